#!/usr/bin/env bash
# `make demo`: a local swarm that strand makes by itself, on 127.0.0.1 only.
#
#   1. makes a deterministic multi-file payload (DEMO_MIB MiB, default 300),
#   2. `strand create` makes its torrent, `strand info` shows it,
#   3. `strand tracker` and `strand seed` start in the background,
#   4. `strand download` fetches everything with its live line and piece map (paced by
#      --download-limit, so that it lasts about 10 s),
#   5. the result is compared byte for byte, and everything started is stopped by PID.
# Needs only the strand binary and python3 (for the payload). Bounded in time throughout.
set -euo pipefail
# Belt and braces beside --no-dht: a strand started from here refuses every DHT name and
# every non-loopback DHT address (the public routers are for users only).
export STRAND_DHT_LOOPBACK_ONLY=1
cd "$(dirname "$0")/../.."

STRAND=${STRAND:-target/release/strand}
MIB=${DEMO_MIB:-300}
TRACKER_PORT=${DEMO_TRACKER_PORT:-16969}
SEED_PORT=${DEMO_SEED_PORT:-16881}
DOWN_PORT=${DEMO_DOWN_PORT:-16891}
LIMIT=${DEMO_TIMEOUT:-300}

[ -x "$STRAND" ] || { echo "demo: $STRAND not found; run 'make build' first" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/strand-demo.XXXXXX")
pids=()
cleanup() {
    local rc=$?
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        # Each process gets 10 s to stop cleanly, then is killed.
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if (( rc != 0 )) && [ -d "$work" ]; then
        for log in "$work"/*.log; do
            [ -f "$log" ] && { echo "--- $log"; tail -n 20 "$log"; } >&2
        done
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT INT TERM

step() { printf '\n\033[1mdemo: %s\033[0m\n' "$*"; }

step "making a ${MIB} MiB payload of several files in $work/share/demo"
python3 - "$work/share/demo" "$MIB" <<'PY'
import os, random, sys
root, mib = sys.argv[1], int(sys.argv[2])
rng = random.Random(20261124)
sizes = {"video/part1.bin": 0.5, "video/part2.bin": 0.3, "docs/readme.txt": 0.0001,
         "docs/empty.txt": 0.0, "audio/track.bin": 0.1999}
for rel, share in sizes.items():
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    left = int(mib * 1024 * 1024 * share)
    with open(path, "wb") as f:
        while left > 0:
            n = min(left, 8 << 20)
            f.write(rng.randbytes(n))
            left -= n
PY

step "strand create"
"$STRAND" create "$work/share/demo" -t "http://127.0.0.1:$TRACKER_PORT/announce" \
    -o "$work/demo.torrent"
step "strand info"
"$STRAND" info "$work/demo.torrent"

step "starting strand tracker on 127.0.0.1:$TRACKER_PORT"
"$STRAND" tracker --bind 127.0.0.1 --port "$TRACKER_PORT" >"$work/tracker.log" 2>&1 &
pids+=($!)

step "starting strand seed on 127.0.0.1:$SEED_PORT"
"$STRAND" seed --no-dht "$work/demo.torrent" -d "$work/share" --bind 127.0.0.1 --port "$SEED_PORT" -q \
    >"$work/seed.log" 2>&1 &
pids+=($!)

# The seeder checks its data before it announces; wait until the tracker lists it.
hash=$("$STRAND" info "$work/demo.torrent" | awk '/^Info hash:/ {print $3}')
for i in $(seq 300); do
    if python3 - "$TRACKER_PORT" "$hash" <<'PY'
import sys, urllib.request
port, h = sys.argv[1], bytes.fromhex(sys.argv[2])
q = "".join("%%%02X" % b for b in h)
body = urllib.request.urlopen(f"http://127.0.0.1:{port}/scrape?info_hash={q}", timeout=2).read()
sys.exit(0 if b"8:completei1e" in body else 1)
PY
    then break; fi
    (( i == 300 )) && { echo "demo: the seeder never registered with the tracker" >&2; exit 1; }
    sleep 0.2
done

# A loopback download of 300 MiB takes about a second; at DEMO_RATE (30M by default) it
# lasts about 10 s, long enough to watch the live line and its piece map fill.
pace=()
if "$STRAND" help download | grep -q -- --download-limit; then
    pace=(--download-limit "${DEMO_RATE:-30M}")
fi
step "strand download (this is the part to watch)"
timeout "$LIMIT" "$STRAND" download --no-dht "$work/demo.torrent" -o "$work/down" \
    --bind 127.0.0.1 --port "$DOWN_PORT" "${pace[@]}"

step "comparing every file with the original"
diff -r "$work/share/demo" "$work/down/demo"
echo "demo: all $(find "$work/down/demo" -type f | wc -l) files identical"
