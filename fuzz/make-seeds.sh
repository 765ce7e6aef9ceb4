#!/usr/bin/env bash
# Rebuilds the seed corpora under fuzz/corpus/<target>/ (committed; a few KiB each):
# torrents made by mktorrent, transmission-create and python3-libtorrent over tiny payloads,
# the repository's testdata/*.torrent, and hand-made wire frames, tracker replies, UDP
# datagrams, extension messages, magnet links and --only/--exclude strings.
# Needs mktorrent, transmission-create and python3 with the libtorrent module (Debian:
# python3-libtorrent); a missing tool only leaves its torrents out.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
corpus="$here/corpus"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

for t in bencode metainfo wire_message wire_stream tracker_http tracker_udp tracker_server extension magnet select resume mse krpc; do
    mkdir -p "$corpus/$t"
done

# Payloads: one file, and a small tree with an empty file and a nested directory.
mkdir -p "$tmp/payload/tree/sub/deeper"
seq 1 3000 > "$tmp/payload/one.txt"
seq 1 500 > "$tmp/payload/tree/a.txt"
seq 501 900 > "$tmp/payload/tree/sub/b.txt"
: > "$tmp/payload/tree/sub/empty.dat"
printf 'deep\n' > "$tmp/payload/tree/sub/deeper/c.txt"

torrents="$tmp/torrents"
mkdir -p "$torrents"
if command -v mktorrent >/dev/null; then
    (cd "$tmp/payload" &&
        mktorrent -d -l 15 -a http://127.0.0.1:6969/announce -o "$torrents/mktorrent-single.torrent" one.txt >/dev/null &&
        mktorrent -d -p -l 15 -a http://a/announce,udp://b:80 -a http://c/announce -c comment \
            -o "$torrents/mktorrent-multi.torrent" tree >/dev/null)
fi
if command -v transmission-create >/dev/null; then
    (cd "$tmp/payload" &&
        transmission-create -s 16 -t http://127.0.0.1:6969/announce -o "$torrents/transmission-single.torrent" one.txt >/dev/null &&
        transmission-create -p -s 16 -t http://a/announce -t udp://b:80 -c comment \
            -o "$torrents/transmission-multi.torrent" tree >/dev/null)
fi
PY=python3
for p in /usr/bin/python3 python3; do
    if "$p" -c 'import libtorrent' 2>/dev/null; then PY="$p"; break; fi
done
if "$PY" -c 'import libtorrent' 2>/dev/null; then
    "$PY" - "$tmp/payload" "$torrents" <<'PYEOF'
import os, sys
import libtorrent as lt
payload, out = sys.argv[1], sys.argv[2]
for name, flags in (("one.txt", 0), ("tree", 0)):
    fs = lt.file_storage()
    lt.add_files(fs, os.path.join(payload, name))
    # v1 only: strand speaks BitTorrent v1.
    t = lt.create_torrent(fs, 16384, flags=lt.create_torrent.v1_only)
    t.add_tracker("http://127.0.0.1:6969/announce", 0)
    t.add_tracker("udp://127.0.0.1:6969", 1)
    t.set_creator("python3-libtorrent " + lt.__version__)
    lt.set_piece_hashes(t, payload)
    with open(os.path.join(out, "libtorrent-" + name.split(".")[0] + ".torrent"), "wb") as f:
        f.write(lt.bencode(t.generate()))
PYEOF
fi
cp "$here"/../testdata/*.torrent "$torrents/"
for f in "$torrents"/*.torrent; do
    cp "$f" "$corpus/metainfo/$(basename "$f")"
    cp "$f" "$corpus/bencode/$(basename "$f")"
done

# The rest: small hand-made samples, written by Python (standard library only).
python3 - "$corpus" "$torrents" <<'PYEOF'
import os, struct, sys
corpus, torrents = sys.argv[1], sys.argv[2]

def put(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(corpus, target, name), "wb") as f:
        f.write(data)

def be(v):
    """Minimal bencoder: bytes, str, int, list, dict (keys sorted)."""
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(be(x) for x in v) + b"e"
    if isinstance(v, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, x) for k, x in v.items())
        return b"d" + b"".join(be(k) + be(x) for k, x in items) + b"e"
    raise TypeError(v)

# bencode: the basics and a few edge cases.
for i, s in enumerate([b"i0e", b"i-42e", b"0:", b"4:spam", b"le", b"de", b"l4:spami42ee",
                       b"d3:cow3:moo4:spam4:eggse", b"d1:bi1e1:ai2ee", b"lllleeee",
                       b"d1:ad1:bd1:cleeee", b"i9223372036854775807e"]):
    put("bencode", "sample%02d" % i, s)

# krpc: the BEP 5 examples, a BEP 32 response with nodes6, an error, and an unknown method.
nid = b"abcdefghij0123456789"
for i, m in enumerate([
    {"t": "aa", "y": "q", "q": "ping", "a": {"id": nid}},
    {"t": "aa", "y": "q", "q": "find_node", "a": {"id": nid, "target": b"mnopqrstuvwxyz123456", "want": ["n4", "n6"]}},
    {"t": "aa", "y": "q", "q": "get_peers", "a": {"id": nid, "info_hash": b"mnopqrstuvwxyz123456"}},
    {"t": "aa", "y": "q", "q": "announce_peer", "a": {"id": nid, "implied_port": 1, "info_hash": b"mnopqrstuvwxyz123456", "port": 6881, "token": "aoeusnth"}},
    {"t": "aa", "y": "r", "r": {"id": nid, "token": "aoeusnth", "values": [b"\x7f\x00\x00\x01\x1a\xe1", b"\x00" * 15 + b"\x01\x1a\xe1"]}},
    {"t": "aa", "y": "r", "r": {"id": nid, "nodes": nid + b"\x7f\x00\x00\x02\x1a\xe1", "nodes6": nid + b"\x00" * 15 + b"\x01\x1a\xe1"}},
    {"t": "aa", "y": "e", "e": [201, "A Generic Error Ocurred"]},
    {"t": "aa", "y": "q", "q": "vote", "a": {"id": nid}},
]):
    put("krpc", "sample%02d" % i, be(m))

# metainfo: bare info dicts, as from_info_bytes reads them, cut from the torrents.
def info_slice(data):
    i = data.index(b"4:info") + 6
    return data[i:-1]
for name in sorted(os.listdir(torrents)):
    with open(os.path.join(torrents, name), "rb") as f:
        data = f.read()
    put("metainfo", "info-" + name.replace(".torrent", ".bin"), info_slice(data))
    put("extension", "metadata-data-" + name.replace(".torrent", ".bin"),
        be({"msg_type": 1, "piece": 0, "total_size": len(info_slice(data))}) + info_slice(data))

# wire: every message id, as a frame (wire_message) and as one length-prefixed stream.
frames = [b"", b"\x00", b"\x01", b"\x02", b"\x03", b"\x04" + struct.pack(">I", 7),
          b"\x05\xff\xff\xe0", b"\x06" + struct.pack(">III", 1, 16384, 16384),
          b"\x07" + struct.pack(">II", 1, 0) + b"blockdata",
          b"\x08" + struct.pack(">III", 1, 16384, 16384), b"\x09" + struct.pack(">H", 6881),
          b"\x14\x00" + be({"m": {"ut_metadata": 1, "ut_pex": 2}, "metadata_size": 1234, "p": 6881, "reqq": 250, "v": "strand 0.1.0"}),
          b"\x14\x01" + be({"msg_type": 0, "piece": 0}),
          b"\x0d" + struct.pack(">I", 3),
          # BEP 6: have all, have none, reject, allowed fast (suggest is 0x0d above).
          b"\x0e", b"\x0f", b"\x10" + struct.pack(">III", 2, 16384, 16384),
          b"\x11" + struct.pack(">I", 5)]
for i, fr in enumerate(frames):
    put("wire_message", "frame%02d" % i, fr)
stream = b"".join(struct.pack(">I", len(fr)) + fr for fr in frames)
handshake = (b"\x13BitTorrent protocol" + b"\x00\x00\x00\x00\x00\x10\x00\x05"
             + bytes(range(20)) + b"-ST0100-abcdefghijkl")
put("wire_stream", "handshake-then-all", handshake + stream)
put("wire_stream", "all-messages", stream)
put("wire_stream", "handshake-only", handshake)
# A Fast peer's opening: handshake with the Fast bit, extension handshake, have all, allowed
# fast, then a suggest, a reject and (out of turn) have none.
fast = [frames[11], b"\x0e", b"\x11" + struct.pack(">I", 1), b"\x11" + struct.pack(">I", 7),
        b"\x0d" + struct.pack(">I", 2), b"\x10" + struct.pack(">III", 1, 0, 16384), b"\x0f"]
put("wire_stream", "fast-opening",
    handshake[:27] + b"\x04" + handshake[28:] + b"".join(struct.pack(">I", len(fr)) + fr for fr in fast))
put("wire_stream", "too-long", struct.pack(">I", (1 << 20) + 1) + b"\x07")
put("wire_stream", "bitfield-have-piece",
    struct.pack(">I", 3) + b"\x05\xff\xc0" + struct.pack(">I", 5) + b"\x04\x00\x00\x00\x09"
    + struct.pack(">I", 13) + b"\x07" + struct.pack(">II", 9, 0) + b"abcd")

# HTTP tracker replies.
peer4 = bytes([127, 0, 0, 1]) + struct.pack(">H", 6881)
peer6 = bytes(15) + b"\x01" + struct.pack(">H", 6882)
replies = {
    "compact": {"interval": 1800, "min interval": 60, "complete": 3, "incomplete": 1, "peers": peer4 * 3},
    "compact6": {"interval": 900, "peers": peer4, "peers6": peer6 * 2},
    "dicts": {"interval": 60, "peers": [{"ip": "10.0.0.1", "peer id": "A" * 20, "port": 6881},
                                        {"ip": "::1", "port": 6882}, {"ip": "host.example", "port": 1}]},
    "failure": {"failure reason": "unregistered torrent"},
    "warning": {"interval": 60, "peers": b"", "warning message": "slow down"},
    "opentracker": {"complete": 0, "downloaded": 0, "incomplete": 1, "interval": 1801, "min interval": 900, "peers": peer4},
}
for name, v in replies.items():
    put("tracker_http", name, be(v))

# UDP tracker datagrams (BEP 15): replies the client reads and requests the tracker reads.
tid, cid = 0x12345678, 0x0102030405060708
udp = {
    "connect-reply": struct.pack(">IIQ", 0, tid, cid),
    "announce-reply4": struct.pack(">IIIII", 1, tid, 1800, 2, 5) + peer4 * 2,
    "announce-reply6": struct.pack(">IIIII", 1, tid, 1800, 2, 5) + peer6,
    "scrape-reply": struct.pack(">II", 2, tid) + struct.pack(">III", 5, 10, 2) * 2,
    "error-reply": struct.pack(">II", 3, tid) + b"unknown info hash",
    "connect-request": struct.pack(">QII", 0x41727101980, 0, tid),
    "announce-request": struct.pack(">QII", cid, 1, tid) + bytes(range(20)) + b"-ST0100-abcdefghijkl"
                        + struct.pack(">QQQIIIiH", 0, 1000, 0, 2, 0, 7, -1, 6881),
    "scrape-request": struct.pack(">QII", cid, 2, tid) + bytes(range(20)) + bytes(range(20, 40)),
}
for name, d in udp.items():
    put("tracker_udp", name, d)

# Extension protocol payloads (the bytes after the extended id).
ext = {
    "handshake-strand": be({"m": {"ut_metadata": 1, "ut_pex": 2}, "metadata_size": 31235, "p": 6881, "reqq": 250, "v": "strand 0.1.0", "yourip": bytes([127, 0, 0, 1])}),
    "handshake-libtorrent": be({"complete_ago": -1, "m": {"lt_donthave": 7, "share_mode": 8, "upload_only": 3, "ut_holepunch": 4, "ut_metadata": 2, "ut_pex": 1},
                                "metadata_size": 5041, "reqq": 500, "upload_only": 0, "v": "libtorrent/2.0.8.0", "yourip": bytes([127, 0, 0, 1])}),
    "handshake-transmission": be({"e": 0, "ipv4": bytes([127, 0, 0, 1]), "m": {"ut_holepunch": 4, "ut_metadata": 3, "ut_pex": 1}, "metadata_size": 5041,
                                  "p": 51413, "reqq": 512, "v": "Transmission 3.00", "yourip": bytes([127, 0, 0, 1])}),
    "metadata-request": be({"msg_type": 0, "piece": 0}),
    "metadata-reject": be({"msg_type": 2, "piece": 3}),
    "metadata-data-short": be({"msg_type": 1, "piece": 1, "total_size": 16390}) + b"abcdef",
    "pex": be({"added": peer4 * 2, "added.f": b"\x00\x10", "added6": peer6, "dropped": peer4, "dropped6": b""}),
}
for name, d in ext.items():
    put("extension", name, d)

# Magnet links.
h = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"
magnets = {
    "hex": "magnet:?xt=urn:btih:" + h,
    "full": "magnet:?xt=urn:btih:" + h + "&dn=Some+Name%20here&tr=http%3A%2F%2F127.0.0.1%3A6969%2Fannounce&tr=udp://t:80&x.pe=127.0.0.1:6881&x.pe=[::1]:6882",
    "base32": "magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK&dn=x",
    "numbered": "MAGNET:?xt.1=urn:btih:" + h.upper() + "&tr.1=http://a/announce&tr.2=http://b/announce&so=0,2-4",
    "hybrid": "magnet:?xt=urn:btih:" + h + "&xt=urn:btmh:1220" + "ab" * 32,
    "v2-only": "magnet:?xt=urn:btmh:1220" + "ab" * 32,
}
for name, m in magnets.items():
    put("magnet", name, m)

# select: two bytes of file count, then the --only list or glob, NUL, the path it is matched to.
sel = {
    "only-list": b"\x00\x0a" + b"1,3-5, 7 - 9\x00album/disc1/track02.txt",
    "glob-star": b"\x00\x04" + b"*.txt\x00album/notes.txt",
    "glob-mixed": b"\x00\x04" + b"album/*/t?ack*.txt\x00album/disc1/deep/track01.txt",
    "glob-stars": b"\x00\x01" + b"a*a*a*a*b\x00aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
}
for name, d in sel.items():
    put("select", name, d)
# tracker_server: request heads as clients send them to `strand tracker`.
from urllib.parse import quote_from_bytes
ih = bytes.fromhex("c12fe1c06bba254a9dc9f519b335aa7c1367a88a")
q = lambda b: quote_from_bytes(b, safe="")
heads = {
    "announce-transmission": "GET /announce?info_hash=" + q(ih) + "&peer_id=-TR3000-abcdefghijkl&port=51413"
        "&uploaded=0&downloaded=0&left=1048576&numwant=80&key=1a2b3c4d&compact=1&supportcrypto=1"
        "&event=started HTTP/1.1\r\nHost: 127.0.0.1:6969\r\nUser-Agent: Transmission/3.00\r\n"
        "Accept: */*\r\nAccept-Encoding: deflate, gzip\r\n\r\n",
    "announce-libtorrent": "GET /announce?info_hash=" + q(ih) + "&peer_id=-LT2080-" + q(b"\x01\x02abcdefghi")
        + "&port=6881&uploaded=0&downloaded=0&left=0&corrupt=0&key=5F2A&event=completed&numwant=200"
        "&compact=1&no_peer_id=1&ipv6=%3a%3a1 HTTP/1.1\r\nHost: 127.0.0.1:6969\r\n"
        "User-Agent: libtorrent/2.0.8.0\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
    "announce-strand": "GET /announce?info_hash=" + q(ih) + "&peer_id=-SR0100-aaaaaaaaaaaa&port=6882"
        "&uploaded=10&downloaded=20&left=30&compact=1&event=stopped HTTP/1.1\r\n"
        "Host: 127.0.0.1:6969\r\nUser-Agent: ureq/2.12.1\r\nAccept: */*\r\n\r\n",
    "announce-noncompact": "GET /announce?info_hash=" + q(ih) + "&peer_id=-XX0000-bbbbbbbbbbbb&port=1&compact=0 HTTP/1.0\n\n",
    "scrape-two": "GET /scrape?info_hash=" + q(ih) + "&info_hash=" + q(bytes(20)) + " HTTP/1.1\r\n\r\n",
    "scrape-all": "GET /scrape HTTP/1.1\r\n\r\n",
    "post": "POST /announce HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    "not-found": "GET /favicon.ico HTTP/1.1\r\n\r\n",
}
for name, d in heads.items():
    put("tracker_server", name, d)

# resume: two bytes of piece count, then a resume file for the info hash the target expects.
rih = b"strand fuzz: resume!"
def resume_file(pieces, bits, files):
    return struct.pack(">H", pieces) + be({b"files": files, b"info hash": rih,
        b"piece count": pieces, b"pieces": bits, b"version": 1})
resumes = {
    "empty": resume_file(0, b"", []),
    "partial": resume_file(10, b"\xa5\x40", [[4096, 1732435200123456789], [], [0, 0]]),
    "complete": resume_file(16, b"\xff\xff", [[262144, 1700000000000000000]]),
    "spare-bits": resume_file(3, b"\xff", [[1, 2]]),
}
for name, d in resumes.items():
    put("resume", name, d)
PYEOF
# mse: the first byte picks the policy and mode of fuzz_targets/mse.rs (even: raw stream;
# odd: plaintext of the encrypted part behind a genuine prefix). Raw streams are what an
# initiator with the target's fixed key sends its fixed-key responder.
python3 - "$corpus/mse" <<'PYEOF'
import hashlib, os, struct, sys
out = sys.argv[1]
P = int("FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
        "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A3621"
        "0000000000090563", 16)
xa = int.from_bytes(bytes(range(0x01, 0x15)), "big")
xb = int.from_bytes(bytes(range(0xa1, 0xb5)), "big")
S = pow(pow(2, xb, P), xa, P).to_bytes(96, "big")
ya = pow(2, xa, P).to_bytes(96, "big")
sha = lambda *parts: hashlib.sha1(b"".join(parts)).digest()
def rc4(key, data):
    s, j = list(range(256)), 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    i = j = 0
    res = bytearray()
    for n, b in enumerate(bytes(1024) + data):
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        if n >= 1024:
            res.append(b ^ s[(s[i] + s[j]) % 256])
    return bytes(res)
def offer(provide, pad_c, ia, vc=bytes(8), pad_len=None):
    pad_len = len(pad_c) if pad_len is None else pad_len
    return vc + struct.pack(">IH", provide, pad_len) + pad_c + struct.pack(">H", len(ia)) + ia
def raw(info_hash, pad_a, plain):
    req = sha(b"req1", S) + bytes(a ^ b for a, b in zip(sha(b"req2", info_hash), sha(b"req3", S)))
    return ya + pad_a + req + rc4(sha(b"keyA", S, info_hash), plain)
hs = b"\x13BitTorrent protocol" + bytes(5) + b"\x10" + bytes(2) + b"\x55" * 20 + b"-SR0100-fuzzfuzzfuzz"
seeds = {
    "raw-prefer": b"\x00" + raw(b"\x55" * 20, b"\x07" * 7, offer(3, b"", hs)),
    "raw-require-pad512": b"\x02" + raw(b"\x66" * 20, bytes(512), offer(2, bytes(9), hs)),
    "raw-short-key": b"\x00" + ya[:50],
    "enc-prefer": b"\x01" + offer(3, b"", hs),
    "enc-require-padc": b"\x03" + offer(2, bytes(20), hs + bytes(5)),
    "enc-off": b"\x05" + offer(1, b"", hs),
    "enc-huge-padc": b"\x01" + offer(2, b"", b"", pad_len=513),
    "enc-wrong-vc": b"\x01" + offer(2, b"", hs, vc=b"\x01" + bytes(7)),
    "enc-ia-short": b"\x01" + offer(2, b"", b"")[:-2] + b"\xff\xff" + hs,
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
PYEOF
du -sh "$corpus"
