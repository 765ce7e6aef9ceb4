#!/usr/bin/env bash
# Interop case: the tracker dies mid-download. strand seeds a 512 MiB torrent whose
# only tracker is opentracker over UDP; strand downloads it. As soon as the
# downloader logs its first announce reply (it then dials the seeder), the tracker is
# stopped by its PID. The download must still complete from the peer it already has,
# and the downloader must exit normally although its `completed` and `stopped`
# announces now fail. (strand moves hundreds of MiB per second on loopback, so "stop
# at about 10 %" is done as "stop right after the downloader's announce", polling its
# log every 0.05 s; the share of blocks on disk at that moment is logged, and the case
# fails if the download had already finished.)
#
# Everything runs inside a fresh network namespace that has only `lo`:
#   opentracker   127.0.0.1:$TRACKER_PORT (UDP announces; HTTP for the script's scrapes)
#   strand seed   127.0.0.1:$SEED_PORT
#   downloader    strand, default port 6881
#
# Environment:
#   STRAND       path to the strand binary (default: target/release/strand)
#   DL_TIMEOUT   seconds the downloader may take (default 180)
#   KEEP_WORK=1  keep the temp dir after the run
# Tests strand's tracker client; with another DOWNLOADER the case is skipped.
CASE_NAME=${CASE_NAME:-tracker_stops}
. "$(dirname "$0")/lib.sh"

STRAND=${STRAND:-$REPO_ROOT/target/release/strand}
DL_TIMEOUT=${DL_TIMEOUT:-180}

TRACKER_IP=127.0.0.1
TRACKER_PORT=6969
SEED_PORT=51413
UDP_ANNOUNCE="udp://$TRACKER_IP:$TRACKER_PORT/announce"
HTTP_ANNOUNCE="http://$TRACKER_IP:$TRACKER_PORT/announce"
NAME=strand-tracker-stops-payload
TOTAL=536870912
PAYLOAD_SPEC=("$NAME/big.bin:$TOTAL")

strand_only "this case tests strand's tracker client"
require ip opentracker python3 cmp timeout du
require_strand

interop_init

setup_payload "512 MiB" "${PAYLOAD_SPEC[@]}"
torrent_by_strand_create 262144 "$UDP_ANNOUNCE"

start_opentracker "$TRACKER_IP" "$TRACKER_PORT" "$INFOHASH"
start_seeder_strand "$PID_opentracker" "$HTTP_ANNOUNCE" -q

start_strand_download

# Poll the downloader's log (every 0.05 s, bounded) for its first announce reply,
# then stop the tracker.
announced=0
deadline=$(( $(date +%s) + 30 ))
while (( $(date +%s) < deadline )) && is_running "$DL_PID"; do
    if announce_replied "$DL_LOG" "$UDP_ANNOUNCE"; then
        announced=1
        break
    fi
    sleep 0.05
done
(( announced == 1 )) || die "the downloader never got an announce reply"
have=$(du -sB1 "$OUT_DIR" | cut -f1)  # blocks written, not the sparse size
log "stopping the tracker $(elapsed_since "$DL_START")s after the downloader started, with $have of $TOTAL bytes on disk ($(( have * 100 / TOTAL ))%)"
(( have < TOTAL )) || die "the download had already finished when the tracker stopped: use a bigger payload"
stop_name opentracker
tracker_counts "$HTTP_ANNOUNCE" "$INFOHASH" 2>/dev/null && die "the tracker still answers after the stop"
have=$(du -sB1 "$OUT_DIR" | cut -f1)
log "tracker stopped $(elapsed_since "$DL_START")s after the downloader started, $(( have * 100 / TOTAL ))% on disk; the download goes on with the peer it has"

wait_strand_download
log "tracker errors the downloader saw after the stop:"
grep -F "tracker $UDP_ANNOUNCE:" "$DL_LOG" | grep -v "peers after" | sed 's/^/    /' >&2 || true
compare_tree "$TORRENT" "$SEED_DIR" "$OUT_DIR" || die "downloaded files differ from the payload"
leak_check
log "RESULT: tracker stopped mid-download: 512 MiB in ${DL_SECS}s"
interop_pass
