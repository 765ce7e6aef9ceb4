#!/usr/bin/env python3
"""A recording TCP relay for fuzz/capture-frames.sh. Standard library only.

  capture.py LISTEN_PORT UPSTREAM_PORT OUT_PREFIX SECONDS

Listens on 127.0.0.1:LISTEN_PORT, relays the first connection to 127.0.0.1:UPSTREAM_PORT and
writes the first 64 KiB each side sent to OUT_PREFIX.client and OUT_PREFIX.server. Ends when
either side closes or after SECONDS, whichever comes first.
"""
import select
import socket
import sys
import time

CAP = 64 * 1024

listen_port, upstream_port, prefix, seconds = sys.argv[1:5]
deadline = time.monotonic() + float(seconds)
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(listen_port)))
srv.listen(1)
srv.settimeout(max(0.1, deadline - time.monotonic()))
client, _ = srv.accept()
server = socket.create_connection(("127.0.0.1", int(upstream_port)), timeout=5)
seen = {client: bytearray(), server: bytearray()}
other = {client: server, server: client}
open_ = True
while open_ and time.monotonic() < deadline:
    ready, _, _ = select.select([client, server], [], [], 0.2)
    for s in ready:
        data = s.recv(65536)
        if not data:
            open_ = False
            break
        seen[s] += data[: max(0, CAP - len(seen[s]))]
        other[s].sendall(data)
for s, name in ((client, "client"), (server, "server")):
    with open(prefix + "." + name, "wb") as f:
        f.write(bytes(seen[s]))
    s.close()
print("captured %d bytes from the client, %d from the server" % (len(seen[client]), len(seen[server])))
