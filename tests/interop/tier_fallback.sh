#!/usr/bin/env bash
# Interop case: announce-list fallback (BEP 12). The torrent's tiers are
#   [[udp://127.0.0.1:$SILENT_PORT (silent), http://127.0.0.1:$CLOSED_PORT (refused)],
#    [http://127.0.0.1:$TRACKER_PORT (opentracker)]]
# The silent UDP "tracker" is a socket that reads nothing and answers nothing (a
# blackholed tracker, the slow case: no ICMP error comes back); the HTTP one has no
# listener. strand must fall through to opentracker within seconds (each tracker that
# is not the last option gets a short try), find the strand seeder and download.
# The time from the downloader's start to its first successful announce is logged.
#
# Everything runs inside a fresh network namespace that has only `lo`:
#   opentracker       127.0.0.1:$TRACKER_PORT
#   silent UDP socket 127.0.0.1:$SILENT_PORT (python3)
#   strand seed       127.0.0.1:$SEED_PORT
#   downloader        strand, default port 6881
#
# Environment:
#   STRAND            path to the strand binary (default: target/release/strand)
#   DL_TIMEOUT        seconds the downloader may take (default 120)
#   FALLBACK_LIMIT    most seconds allowed to the first successful announce (default 15)
#   KEEP_WORK=1       keep the temp dir after the run
# Tests strand's tracker client; with another DOWNLOADER the case is skipped.
CASE_NAME=${CASE_NAME:-tier_fallback}
. "$(dirname "$0")/lib.sh"

STRAND=${STRAND:-$REPO_ROOT/target/release/strand}
DL_TIMEOUT=${DL_TIMEOUT:-120}
FALLBACK_LIMIT=${FALLBACK_LIMIT:-15}

TRACKER_IP=127.0.0.1
TRACKER_PORT=6969
SILENT_PORT=6970
CLOSED_PORT=6971
SEED_PORT=51413
ANNOUNCE="http://$TRACKER_IP:$TRACKER_PORT/announce"
DEAD_UDP="udp://$TRACKER_IP:$SILENT_PORT/announce"
DEAD_HTTP="http://$TRACKER_IP:$CLOSED_PORT/announce"
NAME=strand-tiers-payload
PAYLOAD_SPEC=("$NAME/data.bin:16777217")

strand_only "this case tests strand's tracker tiers"
require ip opentracker mktorrent python3 cmp timeout
require_strand

interop_init

setup_payload "16 MiB" "${PAYLOAD_SPEC[@]}"
# Two tiers: [silent udp, refused http], then [opentracker].
torrent_by_mktorrent 18 "$DEAD_UDP,$DEAD_HTTP" "$ANNOUNCE"
"$STRAND" info "$TORRENT" >"$WORK/logs/info.txt" 2>&1 || die "strand info failed"
sed -n '/^Trackers:/,$p' "$WORK/logs/info.txt" | head -6 >&2

start_opentracker "$TRACKER_IP" "$TRACKER_PORT" "$INFOHASH"
start_bg silent-udp python3 -c "
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('$TRACKER_IP', $SILENT_PORT))
time.sleep(600)"

# The seeder's own tiers fall back the same way; wait until it is listed.
start_seeder_strand "$PID_opentracker" "$ANNOUNCE" -q

start_strand_download

# Poll the log every 0.1 s (bounded) for the first successful announce.
fallback_secs=""
deadline=$(( $(date +%s) + FALLBACK_LIMIT + 5 ))
while (( $(date +%s) < deadline )); do
    if announce_replied "$DL_LOG" "$ANNOUNCE"; then
        fallback_secs=$(elapsed_since "$DL_START")
        break
    fi
    sleep 0.1
done
[[ -n $fallback_secs ]] || die "no successful announce within $(( FALLBACK_LIMIT + 5 ))s"
log "first successful announce (opentracker, tier 2) ${fallback_secs}s after the downloader started"
grep -E "WARN.*tracker (udp|http)://$TRACKER_IP:($SILENT_PORT|$CLOSED_PORT)" "$DL_LOG" | sed 's/^/    /' >&2 || true
awk -v s="$fallback_secs" -v l="$FALLBACK_LIMIT" 'BEGIN{exit !(s <= l)}' \
    || die "fallback took ${fallback_secs}s (limit ${FALLBACK_LIMIT}s)"

wait_strand_download
compare_tree "$TORRENT" "$SEED_DIR" "$OUT_DIR" || die "downloaded files differ from the payload"
leak_check
log "RESULT: tiers [[silent udp, refused http], [opentracker]]: first peers after ${fallback_secs}s, done in ${DL_SECS}s"
interop_pass
