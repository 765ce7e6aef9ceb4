#!/usr/bin/env bash
# Measures what issue 15 asks to see as figures, with strand on both ends on 127.x only:
#   rates       64 MiB downloaded at --download-limit 8M, and uploaded by a seeder with
#               --upload-limit 4M: the average rate and every 1-second window of the bytes
#               the downloader's socket received (tcp_info bytes_received, from `ss`)
#   sequential  a --sequential download of 1 GiB (generated here) from a seeder slowed
#               with --upload-limit, killed (SIGKILL) after about 300 MB; then every piece
#               on disk is hashed: the share of verified pieces that lie before the first
#               missing one
# Usage: bash bench/content.sh [rates|sequential|all]   (make content-figures)
# A measurement, not a test: it prints figures and fails only if a run breaks. Every wait is
# bounded; every process is stopped by its PID; the temp dir is removed on exit.
set -euo pipefail
# Belt and braces beside --no-dht: a strand started from here refuses every DHT name and
# every non-loopback DHT address (the public routers are for users only).
export STRAND_DHT_LOOPBACK_ONLY=1

REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
STRAND=${STRAND:-$REPO_ROOT/target/release/strand}
WHAT=${1:-all}
[[ -x $STRAND ]] || { echo "strand binary not found at $STRAND (make build)" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/strand-content.XXXXXX")
declare -a PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Our own loopback addresses, so nothing else on the machine is in the way.
NET="127.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1))"
SEED_ADDR="$NET.1"
LEECH_ADDR="$NET.2"
PORT=$((20000 + RANDOM % 20000))

log() { printf '[content %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# wait_listening ADDR PORT: until a TCP connect succeeds (at most 20 s).
wait_listening() {
    local i
    for i in $(seq 1 200); do
        if timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on $1:$2" >&2
    return 1
}

# received: bytes received so far by the downloader's sockets (from its own address).
received() {
    ss -tinH state established src "$LEECH_ADDR" 2>/dev/null \
        | grep -o 'bytes_received:[0-9]*' | awk -F: '{ s += $2 } END { print s + 0 }'
}

# sample PID OUT LIMIT_S: every second, the downloader's bytes received, until PID ends.
sample() {
    local pid=$1 out=$2 limit=$3 t=0
    : >"$out"
    while kill -0 "$pid" 2>/dev/null && ((t < limit * 10)); do
        echo "$(date +%s.%N) $(received)" >>"$out"
        sleep 0.1
        t=$((t + 1))
    done
}

# report NAME FILE LIMIT_BYTES: per-second rates from a sample file.
report() {
    python3 - "$1" "$2" "$3" <<'PY'
import sys
name, path, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = [tuple(map(float, l.split())) for l in open(path) if len(l.split()) == 2]
# From the first byte to the last sample before the connection closed.
rows = [r for r in rows if r[1] > 0]
last = max(range(len(rows)), key=lambda i: rows[i][1])
rows = rows[:last + 1]
total = rows[-1][1] - rows[0][1]
span = rows[-1][0] - rows[0][0]
# Sliding 1-second windows, one starting at each sample (about every 0.1 s).
rates = []
for i, a in enumerate(rows):
    j = next((j for j in range(i, len(rows)) if rows[j][0] - a[0] >= 1.0), None)
    if j is not None:
        rates.append((rows[j][1] - a[1]) / (rows[j][0] - a[0]))
steady = rates
mib = 1024 * 1024
print(f"{name}: limit {limit / mib:.2f} MiB/s; average {total / span / mib:.2f} MiB/s over "
      f"{span:.1f} s ({total / limit / span * 100:.1f}% of the limit)")
print(f"  {len(steady)} sliding 1-second windows (MiB/s), every tenth: "
      + " ".join(f"{r / mib:.2f}" for r in steady[::10]))
if steady:
    print(f"  min {min(steady) / mib:.2f}, max {max(steady) / mib:.2f} "
          f"({max(steady) / limit * 100:.1f}% of the limit)")
PY
}

make_torrent() { # make_torrent MIB NAME
    mkdir -p "$WORK/$2/data"
    head -c "$(($1 * 1024 * 1024))" /dev/urandom >"$WORK/$2/data/payload.bin"
    "$STRAND" create "$WORK/$2/data/payload.bin" -t "http://$SEED_ADDR:9/announce" \
        -o "$WORK/$2/t.torrent" -q
}

start_seeder() { # start_seeder DIR EXTRA...
    local dir=$1; shift
    "$STRAND" seed "$dir/t.torrent" -d "$dir/data" --bind "$SEED_ADDR" --port "$PORT" -q --no-dht \
        --tracker-timeout 600 "$@" >"$dir/seed.log" 2>&1 &
    SEED_PID=$!
    PIDS+=("$SEED_PID")
    wait_listening "$SEED_ADDR" "$PORT"
}

start_leecher() { # start_leecher DIR EXTRA...
    local dir=$1; shift
    "$STRAND" download "$dir/t.torrent" -o "$dir/out" --bind "$LEECH_ADDR" \
        --port $((PORT + 1)) --peer "$SEED_ADDR:$PORT" -q --no-dht "$@" >"$dir/leech.log" 2>&1 &
    LEECH_PID=$!
    PIDS+=("$LEECH_PID")
}

rates() {
    log "64 MiB at --download-limit 8M"
    make_torrent 64 rates
    start_seeder "$WORK/rates"
    start_leecher "$WORK/rates" --download-limit 8M
    sample "$LEECH_PID" "$WORK/rates/down.txt" 120
    wait "$LEECH_PID" || { cat "$WORK/rates/leech.log" >&2; exit 1; }
    cmp "$WORK/rates/data/payload.bin" "$WORK/rates/out/payload.bin"
    report "download" "$WORK/rates/down.txt" $((8 * 1024 * 1024))
    kill "$SEED_PID"; wait "$SEED_PID" 2>/dev/null || true

    log "64 MiB from a seeder at --upload-limit 4M"
    rm -rf "$WORK/rates/out"
    start_seeder "$WORK/rates" --upload-limit 4M
    start_leecher "$WORK/rates"
    sample "$LEECH_PID" "$WORK/rates/up.txt" 120
    wait "$LEECH_PID" || { cat "$WORK/rates/leech.log" >&2; exit 1; }
    kill "$SEED_PID"; wait "$SEED_PID" 2>/dev/null || true
    cmp "$WORK/rates/data/payload.bin" "$WORK/rates/out/payload.bin"
    report "upload" "$WORK/rates/up.txt" $((4 * 1024 * 1024))
    rm -rf "$WORK/rates"
}

sequential() {
    log "1 GiB --sequential from a seeder at --upload-limit 40M, killed after ~300 MB"
    make_torrent 1024 seq
    start_seeder "$WORK/seq" --upload-limit 40M
    start_leecher "$WORK/seq" --sequential
    local t=0
    while (( $(received) < 300000000 )); do
        kill -0 "$LEECH_PID" 2>/dev/null || { cat "$WORK/seq/leech.log" >&2; exit 1; }
        ((t < 600)) || { echo "no 300 MB within 60 s" >&2; exit 1; }
        sleep 0.1
        t=$((t + 1))
    done
    kill -9 "$LEECH_PID"; wait "$LEECH_PID" 2>/dev/null || true
    kill "$SEED_PID"; wait "$SEED_PID" 2>/dev/null || true
    python3 - "$REPO_ROOT/tests/interop" "$WORK/seq/t.torrent" "$WORK/seq/out/payload.bin" <<'PY'
import hashlib, os, sys
sys.path.insert(0, sys.argv[1])
from torrent_tool import bdecode
meta, _ = bdecode(open(sys.argv[2], "rb").read())
info = meta[b"info"]
plen, hashes = info[b"piece length"], info[b"pieces"]
count = len(hashes) // 20
good = []
with open(sys.argv[3], "rb") as f:
    for p in range(count):
        f.seek(p * plen)
        if hashlib.sha1(f.read(plen)).digest() == hashes[20 * p:20 * p + 20]:
            good.append(p)
have = set(good)
first_missing = next(p for p in range(count + 1) if p not in have)
front = sum(1 for p in good if p < first_missing)
print(f"sequential: {len(good)} of {count} pieces of {plen // 1024} KiB verified on disk "
      f"({len(good) * plen / 1e6:.0f} MB); first missing piece {first_missing}; "
      f"{front} of {len(good)} verified pieces lie before it = "
      f"{front / max(len(good), 1) * 100:.1f}%")
PY
    rm -rf "$WORK/seq"
}

case $WHAT in
    rates) rates ;;
    sequential) sequential ;;
    all) rates; sequential ;;
    *) echo "usage: $0 [rates|sequential|all]" >&2; exit 2 ;;
esac
