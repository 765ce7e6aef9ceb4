"""Talk to deluged over its RPC (TLS, zlib-compressed rencode), without deluge-console.

deluge-console 2.0.3 takes about 20 s per call in a namespace with only lo; this takes
well under a second. Run with Debian's /usr/bin/python3 (it has deluge's rencode).

argv: HOST:PORT AUTH_FILE COMMAND [ARG...]   (AUTH_FILE: deluged's `auth`, localclient line)
  add TORRENT SAVE_DIR   add a .torrent file, started, data in SAVE_DIR
  magnet URI SAVE_DIR    add a magnet link, started
  status                 one line per torrent: HASH STATE PROGRESS TOTAL_DONE
  config KEY             print one core config value (repr)
Exit 1 on an RPC error or a connection error (message on stderr).
"""
import base64
import os
import socket
import ssl
import struct
import sys
import zlib

import rencode

RPC_RESPONSE, RPC_ERROR = 1, 2
HEADER = "!BI"  # protocol version 1, body length


class Deluge:
    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # deluged's own self-signed certificate
        raw = socket.create_connection((host, int(port)), timeout=15)
        self.sock = ctx.wrap_socket(raw)
        self.buf = b""
        self.next_id = 0

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("deluged closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def call(self, method, *args, **kwargs):
        self.next_id += 1
        body = zlib.compress(rencode.dumps([[self.next_id, method, list(args), kwargs]]))
        self.sock.sendall(struct.pack(HEADER, 1, len(body)) + body)
        while True:
            _, length = struct.unpack(HEADER, self._read(struct.calcsize(HEADER)))
            msg = rencode.loads(zlib.decompress(self._read(length)), decode_utf8=True)
            if msg[0] == RPC_RESPONSE and msg[1] == self.next_id:
                return msg[2]
            if msg[0] == RPC_ERROR and msg[1] == self.next_id:
                raise RuntimeError("%s: %s" % (msg[2], msg[3]))
            # anything else is an event: ignore it


def main():
    addr, auth_file, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    with open(auth_file) as f:
        user, password = f.readline().strip().split(":")[:2]
    d = Deluge(addr)
    d.call("daemon.login", user, password, client_version="2.0.3")
    if cmd == "add":
        torrent, save = args
        with open(torrent, "rb") as f:
            dump = base64.b64encode(f.read()).decode()
        print(d.call("core.add_torrent_file", os.path.basename(torrent), dump,
                     {"download_location": save, "add_paused": False}))
    elif cmd == "magnet":
        uri, save = args
        print(d.call("core.add_torrent_magnet", uri, {"download_location": save, "add_paused": False}))
    elif cmd == "status":
        keys = ["state", "progress", "total_done"]
        for h, st in sorted(d.call("core.get_torrents_status", {}, keys).items()):
            print(h, st["state"], "%.1f" % st["progress"], st["total_done"])
    elif cmd == "config":
        print(repr(d.call("core.get_config_value", args[0])))
    else:
        raise SystemExit("deluge_rpc: unknown command " + cmd)


try:
    main()
except (OSError, RuntimeError, ValueError) as e:
    print("deluge_rpc: %s" % e, file=sys.stderr)
    sys.exit(1)
