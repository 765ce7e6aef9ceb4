#!/bin/sh
# Regenerates the .torrent fixtures in this directory from a deterministic payload.
# Needs mktorrent 1.1. The payload lives in a temp dir and is deleted afterwards.
set -eu
out=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -f "$out/single.torrent" "$out/multi.torrent" "$out/unsorted.torrent"
cd "$tmp"

seq 1 20000 > hello.txt                      # 108894 bytes -> 4 pieces of 32 KiB
mktorrent -d -l 15 -n hello.txt -c "strand single-file fixture" \
    -a http://127.0.0.1:6969/announce -o "$out/single.torrent" hello.txt

mkdir -p album/disc1/deep album/disc2
seq 1 5000 > album/disc1/deep/track01.txt    # 23893 bytes
seq 5001 9000 > album/disc1/track02.txt      # 20000 bytes
: > album/disc2/empty.dat                    # zero-length file
seq 9001 12000 > album/notes.txt             # 17001 bytes
mktorrent -d -p -l 15 -n album \
    -a http://127.0.0.1:6969/announce,http://127.0.0.1:6970/announce \
    -a http://127.0.0.1:6971/announce -o "$out/multi.torrent" album

# Same torrent as single.torrent, but the info dict's keys are written out of order
# (name, length, pieces, piece length). Its info hash differs from single.torrent's.
python3 - "$out/single.torrent" "$out/unsorted.torrent" <<'PY'
import re, sys
data = open(sys.argv[1], "rb").read()
start = data.index(b"4:infod") + 6
pieces_at = data.index(b"6:pieces80:", start)
pieces = data[pieces_at:pieces_at + len(b"6:pieces80:") + 80]
length = re.search(rb"6:lengthi\d+e", data[start:]).group(0)
name = re.search(rb"4:name9:hello\.txt", data[start:]).group(0)
plen = re.search(rb"12:piece lengthi\d+e", data[start:]).group(0)
info = b"d" + name + length + pieces + plen + b"e"
end = pieces_at + len(pieces) + 1
assert data[end - 1:end] == b"e"
open(sys.argv[2], "wb").write(data[:start] + info + data[end:])
PY
