#!/usr/bin/env bash
# Load on `strand tracker`: UDP, then HTTP announces from many loopback addresses
# (127.77.x.y), with the tracker's throughput, latency, peak memory and threads.
# Loopback only; the tracker is started here and stopped by its PID.
#
#   bench/tracker_load.sh                 # 10 s each, 8 threads, 2,000 addresses, 100 torrents
#   SECONDS_EACH=5 THREADS=4 SOURCES=500 bench/tracker_load.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${SECONDS_EACH:-10}
THREADS=${THREADS:-8}
SOURCES=${SOURCES:-2000}
TORRENTS=${TORRENTS:-100}

timeout 1200 cargo build --release --quiet --bin strand --example tracker_load
STRAND=target/release/strand
LOAD=target/release/examples/tracker_load

log=$(mktemp)
tracker_pid=
cleanup() {
    [ -n "$tracker_pid" ] && kill "$tracker_pid" 2>/dev/null && wait "$tracker_pid" 2>/dev/null
    rm -f "$log"
}
trap cleanup EXIT

"$STRAND" tracker --bind 127.0.0.1 --port 0 2>"$log" &
tracker_pid=$!
addr=
for _ in $(seq 100); do
    addr=$(grep -o 'http://[0-9.]*:[0-9]*' "$log" | head -1 | sed 's|http://||') || true
    [ -n "$addr" ] && break
    sleep 0.1
done
[ -n "$addr" ] || { echo "strand tracker did not start:"; cat "$log"; exit 1; }
echo "strand tracker $(git rev-parse --short HEAD) on $addr (pid $tracker_pid), $(nproc) cores"
grep -E '^(VmRSS|Threads)' "/proc/$tracker_pid/status" | tr -s ' \t' ' ' | paste -sd ';' \
    | sed 's/^/idle: /'

for mode in udp http; do
    timeout $((SECONDS_EACH + 60)) "$LOAD" --tracker "$addr" --"$mode" --seconds "$SECONDS_EACH" \
        --threads "$THREADS" --sources "$SOURCES" --torrents "$TORRENTS" --pid "$tracker_pid"
done
grep -E '^(VmRSS|VmHWM|Threads)' "/proc/$tracker_pid/status" | tr -s ' \t' ' ' | paste -sd ';' \
    | sed 's/^/after: /'
