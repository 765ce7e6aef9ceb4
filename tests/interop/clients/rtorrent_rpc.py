"""Call rtorrent's XML-RPC over SCGI (what `network.scgi.open_port` serves). Standard library.

argv: HOST:PORT METHOD [ARG...]
Each ARG is passed as a string, except `i:N` (an integer). Prints the result: a list one
item a line, anything else as is. Exit 1 on a fault or a connection error (message on stderr).
Example: rtorrent_rpc.py 127.0.0.1:5000 d.complete 0123…abcd
"""
import socket
import sys
import xmlrpc.client


def scgi_call(addr, body):
    """Send one SCGI request (netstring of headers, then the body); return the reply body."""
    headers = [("CONTENT_LENGTH", str(len(body))), ("SCGI", "1"),
               ("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/RPC2")]
    raw = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in headers)
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(str(len(raw)).encode() + b":" + raw + b"," + body)
        chunks = []
        while True:
            c = s.recv(65536)
            if not c:
                break
            chunks.append(c)
    reply = b"".join(chunks)
    sep = reply.find(b"\r\n\r\n")
    return reply[sep + 4:] if sep >= 0 else reply


def main():
    addr, method = sys.argv[1], sys.argv[2]
    args = [int(a[2:]) if a.startswith("i:") else a for a in sys.argv[3:]]
    body = xmlrpc.client.dumps(tuple(args), method).encode()
    try:
        (result,), _ = xmlrpc.client.loads(scgi_call(addr, body))
    except (OSError, xmlrpc.client.Fault, xmlrpc.client.ResponseError) as e:
        print("rtorrent_rpc: %s %s: %s" % (addr, method, e), file=sys.stderr)
        sys.exit(1)
    if isinstance(result, list):
        for item in result:
            print(item)
    else:
        print(result)


main()
