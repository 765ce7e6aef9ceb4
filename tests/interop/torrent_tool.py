#!/usr/bin/env python3
"""Small helper for the interop scripts. Standard library only.

Subcommands:
  payload DIR SPEC...     write deterministic files; SPEC is RELPATH:SIZE.
                          Content is SHAKE-128("strand-interop:" + RELPATH), so the
                          same spec always gives the same bytes (on any machine).
  infohash TORRENT        print the v1 info hash (hex) of a .torrent file.
  files TORRENT           print "LENGTH<TAB>PATH" per file, PATH relative to the
                          download directory (i.e. starting with the torrent name).
  scrape URL INFOHASH     scrape an HTTP tracker (URL = its announce URL) and print
                          "complete incomplete downloaded" for that hash (0 0 0 if
                          the tracker does not list it). Exits 1 on any error.
  peers URL INFOHASH      announce to an HTTP tracker as a probe leecher (its own peer id,
                          port 9, compact) and print the peers of the reply, one
                          "IP:PORT" a line (the probe itself among them where the tracker
                          lists the announcing peer, as opentracker does); then announce
                          `stopped`, so that nobody keeps dialing the probe. Exits 1 on an error.
  goodpieces TORRENT DIR  print "GOOD BYTES": how many of the torrent's pieces are on disk
                          under DIR with the right SHA-1, and the bytes they hold
                          (missing files read as zeros, which never match). A check
                          independent of strand's own.
"""
import hashlib
import os
import sys
import urllib.parse
import urllib.request


def bdecode(data, i=0):
    """Decode one bencoded value at data[i:]; return (value, end_index)."""
    c = data[i:i + 1]
    if c == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1:end]), end + 1
    if c == b"l":
        i += 1
        out = []
        while data[i:i + 1] != b"e":
            v, i = bdecode(data, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        i += 1
        out = {}
        while data[i:i + 1] != b"e":
            k, i = bdecode(data, i)
            start = i
            v, i = bdecode(data, i)
            out[k] = v
            # Keep the raw span of every value: the info hash is over the raw bytes.
            out[(b"__raw__", k)] = data[start:i]
        return out, i + 1
    if c.isdigit():
        colon = data.index(b":", i)
        n = int(data[i:colon])
        return data[colon + 1:colon + 1 + n], colon + 1 + n
    raise ValueError("bad bencode at offset %d" % i)


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    meta, end = bdecode(data)
    if end != len(data):
        raise ValueError("trailing bytes after the torrent dictionary")
    return meta


def cmd_payload(root, specs):
    for spec in specs:
        rel, size = spec.rsplit(":", 1)
        size = int(size)
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = hashlib.shake_128(("strand-interop:" + rel).encode()).digest(size) if size else b""
        with open(path, "wb") as f:
            f.write(data)


def cmd_infohash(torrent):
    meta = load(torrent)
    print(hashlib.sha1(meta[(b"__raw__", b"info")]).hexdigest())


def cmd_files(torrent):
    info = load(torrent)[b"info"]
    name = info[b"name"].decode()
    if b"files" in info:
        for f in info[b"files"]:
            parts = [p.decode() for p in f[b"path"]]
            print("%d\t%s" % (f[b"length"], "/".join([name] + parts)))
    else:
        print("%d\t%s" % (info[b"length"], name))


def cmd_scrape(announce, infohash_hex):
    if "/announce" not in announce:
        raise SystemExit("announce URL has no /announce, cannot derive scrape URL")
    url = announce.replace("/announce", "/scrape", 1)
    raw = bytes.fromhex(infohash_hex)
    url += ("&" if "?" in url else "?") + "info_hash=" + urllib.parse.quote_from_bytes(raw)
    with urllib.request.urlopen(url, timeout=5) as r:
        body = r.read()
    reply, _ = bdecode(body)
    entry = reply.get(b"files", {}).get(raw)
    if entry is None:
        print("0 0 0")
    else:
        print(entry.get(b"complete", 0), entry.get(b"incomplete", 0), entry.get(b"downloaded", 0))


def cmd_peers(announce, infohash_hex):
    raw = bytes.fromhex(infohash_hex)
    query = {"info_hash": raw, "peer_id": b"-XP0001-interopprobe", "port": 9, "uploaded": 0,
             "downloaded": 0, "left": 1, "compact": 1, "numwant": 200}
    sep = "&" if "?" in announce else "?"
    with urllib.request.urlopen(announce + sep + urllib.parse.urlencode(query), timeout=5) as r:
        reply, _ = bdecode(r.read())
    if b"failure reason" in reply:
        raise ValueError("tracker: %s" % reply[b"failure reason"].decode(errors="replace"))
    peers = reply.get(b"peers", b"")
    if isinstance(peers, bytes):
        for i in range(0, len(peers) - len(peers) % 6, 6):
            print("%d.%d.%d.%d:%d" % (*peers[i:i + 4], int.from_bytes(peers[i + 4:i + 6], "big")))
    else:
        for p in peers:
            print("%s:%d" % (p[b"ip"].decode(), p[b"port"]))
    query["event"] = "stopped"
    urllib.request.urlopen(announce + sep + urllib.parse.urlencode(query), timeout=5).close()


def cmd_goodpieces(torrent, root):
    info = load(torrent)[b"info"]
    plen, hashes = info[b"piece length"], info[b"pieces"]
    name = info[b"name"].decode()
    if b"files" in info:
        files = [(os.path.join(root, name, *[p.decode() for p in f[b"path"]]), f[b"length"])
                 for f in info[b"files"]]
    else:
        files = [(os.path.join(root, name), info[b"length"])]

    def chunks():
        for path, length in files:
            try:
                f = open(path, "rb")
            except OSError:
                f = None
            left = length
            while left:
                n = min(left, 1 << 20)
                b = f.read(n) if f else b""
                yield b + bytes(n - len(b))
                left -= n
            if f:
                f.close()

    good = good_bytes = index = filled = 0
    h = hashlib.sha1()
    for c in chunks():
        while c:
            take = c[:plen - filled]
            c = c[len(take):]
            h.update(take)
            filled += len(take)
            if filled == plen:
                if h.digest() == hashes[20 * index:20 * index + 20]:
                    good, good_bytes = good + 1, good_bytes + filled
                index, h, filled = index + 1, hashlib.sha1(), 0
    if filled and h.digest() == hashes[20 * index:20 * index + 20]:
        good, good_bytes = good + 1, good_bytes + filled
    print(good, good_bytes)


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "payload" and len(args) >= 2:
        cmd_payload(args[0], args[1:])
    elif cmd == "infohash" and len(args) == 1:
        cmd_infohash(args[0])
    elif cmd == "files" and len(args) == 1:
        cmd_files(args[0])
    elif cmd == "goodpieces" and len(args) == 2:
        cmd_goodpieces(args[0], args[1])
    elif cmd in ("scrape", "peers") and len(args) == 2:
        try:
            (cmd_scrape if cmd == "scrape" else cmd_peers)(args[0], args[1])
        except (OSError, ValueError) as e:
            print("%s failed: %s" % (cmd, e), file=sys.stderr)
            return 1
    else:
        raise SystemExit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
