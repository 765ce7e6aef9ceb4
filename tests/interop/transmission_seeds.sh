#!/usr/bin/env bash
# Interop case: transmission-daemon seeds a 64 MiB multi-file torrent through a
# whitelist-only opentracker; the downloader under test fetches it and every
# file is compared byte for byte with the original.
#
# Everything runs inside a fresh network namespace that has only `lo`:
#   opentracker          127.0.0.1:$TRACKER_PORT (HTTP and UDP)
#   transmission-daemon  127.0.1.1:$SEED_PORT, RPC on 127.0.0.1:$RPC_PORT
#   downloader           127.0.2.1 (aria2c binds there; strand uses its defaults)
#
# Environment:
#   DOWNLOADER   strand (default) | aria2c
#   STRAND       path to the strand binary (default: target/release/strand)
#   DL_TIMEOUT   seconds the downloader may take (default 300)
#   KEEP_WORK=1  keep the temp dir (payload, logs, output) after the run
#   TR_LOG       transmission-daemon log level: error|info|debug (default info)
CASE_NAME=${CASE_NAME:-transmission_seeds}
. "$(dirname "$0")/lib.sh"

DOWNLOADER=${DOWNLOADER:-strand}
STRAND=${STRAND:-$REPO_ROOT/target/release/strand}
DL_TIMEOUT=${DL_TIMEOUT:-300}
TR_LOG=${TR_LOG:-info}

TRACKER_IP=127.0.0.1
TRACKER_PORT=6969
SEED_IP=127.0.1.1
SEED_PORT=51413
RPC_PORT=9091
LEECH_IP=127.0.2.1
LEECH_PORT=6881
ANNOUNCE="http://$TRACKER_IP:$TRACKER_PORT/announce"
PIECE_EXP=18            # 256 KiB pieces
NAME=strand-interop-payload

# 64 MiB in all (67108864 bytes); no size is a multiple of the piece size, the
# small files straddle piece boundaries, and one file is empty.
PAYLOAD_SPEC=(
    "$NAME/big.bin:33554433"
    "$NAME/docs/readme.txt:1000"
    "$NAME/docs/empty.txt:0"
    "$NAME/docs/nested/deep/c.bin:20000003"
    "$NAME/media/d.bin:13553428"
)

require ip opentracker transmission-daemon transmission-remote mktorrent python3 cmp timeout
case $DOWNLOADER in
    strand) require_strand ;;
    aria2c) require aria2c ;;
    *) die "unknown DOWNLOADER=$DOWNLOADER (strand|aria2c)" ;;
esac

interop_init

# ---------------------------------------------------------------- payload + torrent
setup_payload "64 MiB" "${PAYLOAD_SPEC[@]}"
torrent_by_mktorrent "$PIECE_EXP" "$ANNOUNCE"

# ---------------------------------------------------------------- tracker
start_opentracker "$TRACKER_IP" "$TRACKER_PORT" "$INFOHASH"

# ---------------------------------------------------------------- transmission seeder
start_transmission_seed "$SEED_IP" "$SEED_PORT" "$RPC_PORT" "$TORRENT" "$SEED_DIR"
WAIT_ALIVE="$PID_transmission $PID_opentracker" wait_for 60 "tracker lists a seeder" \
    tracker_lists_seeder "$ANNOUNCE" "$INFOHASH"
nsx transmission-remote "$TR" -t all -i >"$WORK/logs/transmission-before.txt" 2>&1 || true

# ---------------------------------------------------------------- downloader
log "downloader: $DOWNLOADER (timeout ${DL_TIMEOUT}s)"
SKIP_EMPTY=""
dl_start=$(date +%s.%N)
set +e
case $DOWNLOADER in
    strand)
        RUST_LOG=${RUST_LOG:-info} run_ns downloader-strand timeout --kill-after=10 "$DL_TIMEOUT" \
            "$STRAND" download --no-dht "$TORRENT" -o "$OUT_DIR"
        dl_rc=$?
        ;;
    aria2c)
        # DHT/LPD/PEX are on by default in aria2: all off. --interface binds the
        # tracker and peer sockets to the leecher's own loopback address.
        run_ns downloader-aria2c timeout --kill-after=10 "$DL_TIMEOUT" aria2c --no-conf \
            --enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false \
            --disable-ipv6=true --interface="$LEECH_IP" --listen-port="$LEECH_PORT" \
            --seed-time=0 --bt-save-metadata=false --file-allocation=none \
            --summary-interval=10 --console-log-level=notice \
            --log="$WORK/logs/aria2c-debug.log" --log-level=info \
            -d "$OUT_DIR" "$TORRENT"
        dl_rc=$?
        ;;
esac
set -e
dl_secs=$(awk -v a="$dl_start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
log "downloader exited with $dl_rc after ${dl_secs}s"
(( dl_rc != 124 && dl_rc != 137 )) || die "$DOWNLOADER timed out after ${DL_TIMEOUT}s"
(( dl_rc == 0 )) || die "$DOWNLOADER exited with status $dl_rc"

nsx transmission-remote "$TR" -t all -i >"$WORK/logs/transmission-after.txt" 2>&1 || true
log "transmission: $(grep -E 'Uploaded:' "$WORK/logs/transmission-after.txt" | sed 's/^ *//')"

log "comparing files"
compare_tree "$TORRENT" "$SEED_DIR" "$OUT_DIR" $SKIP_EMPTY || die "downloaded files differ from the payload"
leak_check

mib=$(( $(du -sb "$SEED_DIR" | cut -f1) / 1048576 ))
log "RESULT: transmission -> $DOWNLOADER: ${mib} MiB in ${dl_secs}s ($(awk -v m="$mib" -v s="$dl_secs" 'BEGIN{ if (s > 0) printf "%.1f", m/s; else print "inf" }') MiB/s)"
stop_name transmission
interop_pass
