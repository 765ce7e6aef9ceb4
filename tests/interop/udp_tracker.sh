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

if [[ ${DOWNLOADER:-strand} != strand ]]; then
    log "SKIP: this case tests strand's UDP tracker client (DOWNLOADER=$DOWNLOADER)"
    exit 0
fi
require ip opentracker python3 cmp timeout
[[ -x $STRAND ]] || die "strand binary not found at $STRAND (run: make build, or set STRAND=)"

interop_init

SEED_DIR=$WORK/seed
OUT_DIR=$WORK/out
TORRENT=$WORK/payload.torrent
mkdir -p "$SEED_DIR" "$OUT_DIR"
make_payload "$SEED_DIR" "${PAYLOAD_SPEC[@]}"
"$STRAND" create "$SEED_DIR/$NAME" -t "$UDP_ANNOUNCE" --piece-length 262144 -o "$TORRENT" \
    >"$WORK/logs/create.log" 2>&1 || die "strand create failed"
INFOHASH=$(python3 "$TOOL" infohash "$TORRENT")
log "info hash $INFOHASH, tracker $UDP_ANNOUNCE"

start_opentracker "$TRACKER_IP" "$TRACKER_PORT" "$INFOHASH"

RUST_LOG=${RUST_LOG:-info} start_bg seeder-strand "$STRAND" seed "$TORRENT" -d "$SEED_DIR" \
    --bind 127.0.0.1 --port "$SEED_PORT" -q
WAIT_ALIVE="$PID_seeder_strand $PID_opentracker" wait_for 60 "tracker lists the seeder (UDP announce)" \
    tracker_lists_seeder "$HTTP_ANNOUNCE" "$INFOHASH"

dl_start=$(date +%s.%N)
set +e
RUST_LOG=${RUST_LOG:-info} run_ns downloader-strand timeout --kill-after=10 "$DL_TIMEOUT" \
    "$STRAND" download "$TORRENT" -o "$OUT_DIR" -q
dl_rc=$?
set -e
dl_secs=$(elapsed_since "$dl_start")
log "downloader exited with $dl_rc after ${dl_secs}s"
(( dl_rc == 0 )) || die "strand download exited with status $dl_rc"

grep -F "tracker $UDP_ANNOUNCE:" "$WORK/logs/downloader-strand.log" | grep -q "peers after" \
    || die "the downloader's log shows no UDP announce reply"
log "downloader: $(grep -F "tracker $UDP_ANNOUNCE:" "$WORK/logs/downloader-strand.log" | head -1 | sed 's/^.*\] //')"
compare_tree "$TORRENT" "$SEED_DIR" "$OUT_DIR" || die "downloaded files differ from the payload"
leak_check
log "RESULT: UDP tracker only: $(( $(du -sb "$SEED_DIR" | cut -f1) / 1048576 )) MiB in ${dl_secs}s"
interop_pass
