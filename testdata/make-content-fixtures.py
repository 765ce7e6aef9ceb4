#!/usr/bin/python3
"""Regenerates the pad-file, hybrid, v2-only and odd-torrent fixtures in this directory.

Run with Debian's /usr/bin/python3 and python3-libtorrent 2.0.8 installed (libtorrent makes
hybrid.torrent and v2only.torrent; everything else is written by hand below). The payloads
are deterministic: byte i of a file made with seed k is (7 * i + k) % 251, the same as
`fixture_bytes` in the Rust tests, so tests can rebuild the data and hash it. Nothing here
has a creation date, so re-running reproduces the files byte for byte.
"""
import hashlib
import os
import sys
import tempfile

OUT = os.path.dirname(os.path.abspath(__file__))


def payload(length, seed):
    return bytes((7 * i + seed) % 251 for i in range(length))


def bencode(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    if isinstance(v, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, x) for k, x in v.items())
        return b"d" + b"".join(bencode(k) + bencode(x) for k, x in items) + b"e"
    raise TypeError(v)


def pieces(data, piece_len):
    return b"".join(hashlib.sha1(data[i:i + piece_len]).digest()
                    for i in range(0, len(data), piece_len))


def v1_torrent(name, entries, piece_len, trailer=b""):
    """entries: (dict of extra keys incl. path, length, bytes of the entry in the torrent)."""
    data = b"".join(b for _, _, b in entries)
    files = []
    for extra, length, _ in entries:
        f = dict(extra)
        if length is not None:
            f["length"] = length
        files.append(f)
    info = {"name": name, "piece length": piece_len, "pieces": pieces(data, piece_len),
            "files": files}
    top = {"announce": "http://127.0.0.1:6969/announce", "info": info}
    return bencode(top) + trailer


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    print(name, len(data), "bytes")


def data_entry(path, length, seed):
    return ({"path": path}, length, payload(length, seed))


def pad_entry(length, path=None, attr=True):
    extra = {}
    if attr:
        extra["attr"] = "p"
    if path is not None:
        extra["path"] = path
    return (extra, length, bytes(length))


def main():
    # Pad files: `attr` p, and libtorrent's `.pad/N` without attr. Piece 1's second block
    # lies wholly in padding.
    write("pad.torrent", v1_torrent("padded", [
        data_entry(["a.bin"], 40000, 1),
        pad_entry(25536, [".pad", "25536"]),
        data_entry(["b.bin"], 5000, 2),
        pad_entry(27768, [".pad", "27768"], attr=False),
        data_entry(["c.bin"], 100, 3),
    ], 32768))

    # One oddity each, all harmless, each worth one warning line.
    small = 16384
    write("odd-empty-component.torrent", v1_torrent("odd", [
        data_entry(["a", "", "b.bin"], 1000, 1)], small))
    write("odd-duplicate.torrent", v1_torrent("odd", [
        data_entry(["x.txt"], 1000, 1), data_entry(["x.txt"], 1000, 2)], small))
    write("odd-backslash.torrent", v1_torrent("odd", [
        data_entry(["back\\slash.txt"], 1000, 1)], small))
    write("odd-symlink.torrent", v1_torrent("odd", [
        data_entry(["target.bin"], 1000, 1),
        ({"attr": "l", "path": ["link"], "symlink path": ["target.bin"]}, None, b"")], small))
    write("odd-pad-no-path.torrent", v1_torrent("odd", [
        data_entry(["a.bin"], 1000, 1), pad_entry(small - 1000),
        data_entry(["b.bin"], 1000, 2)], small))
    write("odd-trailing.torrent", v1_torrent("odd", [
        data_entry(["a.bin"], 1000, 1)], small, trailer=b"\r\n<html>\r\n"))

    import libtorrent as lt
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "hybrid")
        os.makedirs(os.path.join(root, "sub"))
        with open(os.path.join(root, "a.txt"), "wb") as f:
            f.write(payload(20000, 1))
        with open(os.path.join(root, "sub", "b.txt"), "wb") as f:
            f.write(payload(5000, 2))
        for name, flags in [("hybrid.torrent", 0), ("v2only.torrent", lt.create_torrent.v2_only)]:
            fs = lt.file_storage()
            lt.add_files(fs, root)
            ct = lt.create_torrent(fs, 16384, flags)
            ct.add_tracker("http://127.0.0.1:6969/announce")
            lt.set_piece_hashes(ct, tmp)
            e = ct.generate()
            e.pop(b"creation date", None)
            e.pop(b"created by", None)
            write(name, lt.bencode(e))
    # A hybrid whose v2 file tree (first in the info dict) names a file the v1 list does not.
    hybrid = open(os.path.join(OUT, "hybrid.torrent"), "rb").read()
    bad = hybrid.replace(b"5:b.txt", b"5:c.txt", 1)
    assert bad != hybrid and bad.count(b"5:b.txt") == 1
    write("hybrid-mismatch.torrent", bad)


if __name__ == "__main__":
    sys.exit(main())
