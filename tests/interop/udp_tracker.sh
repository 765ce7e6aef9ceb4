#!/usr/bin/env bash
# Interop case: a torrent whose only tracker is opentracker's UDP port (BEP 15).
# strand seeds it, strand downloads it; both find each other only through UDP
# announces, and every file is compared byte for byte with the original.
#
# Everything runs inside a fresh network namespace that has only `lo`:
#   opentracker   127.0.0.1:$TRACKER_PORT (UDP announces; HTTP only for the script's scrapes)
#   strand seed   127.0.0.1:$SEED_PORT (trackers record the announce's source address,
#                 which is 127.0.0.1 on lo whatever address the seeder listens on)
#   downloader    strand, default port 6881
#
# Environment:
#   STRAND       path to the strand binary (default: target/release/strand)
#   DL_TIMEOUT   seconds the downloader may take (default 120)
#   KEEP_WORK=1  keep the temp dir (payload, logs, output) after the run
# Tests strand's UDP tracker client, so DOWNLOADER must be strand (aria2c has no UDP
# trackers without DHT); with another DOWNLOADER the case is skipped.
CASE_NAME=${CASE_NAME:-udp_tracker}
. "$(dirname "$0")/lib.sh"

STRAND=${STRAND:-$REPO_ROOT/target/release/strand}
DL_TIMEOUT=${DL_TIMEOUT:-120}

TRACKER_IP=127.0.0.1
TRACKER_PORT=6969
SEED_PORT=51413
UDP_ANNOUNCE="udp://$TRACKER_IP:$TRACKER_PORT/announce"
HTTP_ANNOUNCE="http://$TRACKER_IP:$TRACKER_PORT/announce"
NAME=strand-udp-payload
PAYLOAD_SPEC=(
    "$NAME/a.bin:20000003"
    "$NAME/sub/b.bin:12345678"
)

strand_only "this case tests strand's UDP tracker client"
require ip opentracker python3 cmp timeout
require_strand

interop_init

setup_payload "30 MiB" "${PAYLOAD_SPEC[@]}"
torrent_by_strand_create 262144 "$UDP_ANNOUNCE"

start_opentracker "$TRACKER_IP" "$TRACKER_PORT" "$INFOHASH"
# The seeder announces over UDP too; the script's scrape goes over HTTP.
start_seeder_strand "$PID_opentracker" "$HTTP_ANNOUNCE" -q

start_strand_download
wait_strand_download

announce_replied "$DL_LOG" "$UDP_ANNOUNCE" || die "the downloader's log shows no UDP announce reply"
log "downloader: $(grep -F "tracker $UDP_ANNOUNCE:" "$DL_LOG" | head -1 | sed 's/^.*\] //')"
compare_tree "$TORRENT" "$SEED_DIR" "$OUT_DIR" || die "downloaded files differ from the payload"
leak_check
log "RESULT: UDP tracker only: $(( $(du -sb "$SEED_DIR" | cut -f1) / 1048576 )) MiB in ${DL_SECS}s"
interop_pass
