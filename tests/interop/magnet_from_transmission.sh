#!/usr/bin/env bash
# Interop case: transmission-daemon seeds a 32 MiB multi-file torrent through a
# whitelist-only opentracker; strand is given only the MAGNET link (xt + dn + tr,
# as `transmission-show -m` prints it; no x.pe), so it must announce, dial
# transmission, fetch the info dictionary over ut_metadata (BEP 9/10), then the
# files. Every file is compared byte for byte with the original, and strand's
# --save-torrent output must carry the same info hash.
#
# Timings logged (not checked): strand's start -> the `metadata:` line on its
# stderr ("metadata phase"; polled every 20 ms, bounded by META_TIMEOUT), and
# strand's start -> exit (total). The issue's target is a metadata phase under
# 2 s on loopback.
#
# Everything runs inside a fresh network namespace that has only `lo`:
#   opentracker          127.0.0.1:$TRACKER_PORT (HTTP and UDP)
#   transmission-daemon  127.0.1.4:$SEED_PORT, RPC on 127.0.0.1:$RPC_PORT
#   strand download      127.0.2.4:$LEECH_PORT
#
# Environment:
#   STRAND        path to the strand binary (default: target/release/strand)
#   DL_TIMEOUT    seconds strand may take in all (default 300)
#   META_TIMEOUT  seconds to wait for the `metadata:` line (default 60)
#   RUST_LOG      strand's log filter (default strand=debug, into its log file)
#   KEEP_WORK=1   keep the temp dir (payload, logs, output) after the run
#   TR_LOG        transmission-daemon log level: error|info|debug (default info)
CASE_NAME=${CASE_NAME:-magnet_from_transmission}
. "$(dirname "$0")/lib.sh"

strand_only "tests strand's magnet download"
STRAND=${STRAND:-$REPO_ROOT/target/release/strand}
DL_TIMEOUT=${DL_TIMEOUT:-300}
META_TIMEOUT=${META_TIMEOUT:-60}

TRACKER_IP=127.0.0.1
TRACKER_PORT=6969
SEED_IP=127.0.1.4
SEED_PORT=51414
RPC_PORT=9094
LEECH_IP=127.0.2.4
LEECH_PORT=6884
ANNOUNCE="http://$TRACKER_IP:$TRACKER_PORT/announce"
PIECE_EXP=18            # 256 KiB pieces
NAME=strand-magnet-from-transmission

# 32 MiB in all (33554432 bytes); sizes off the piece grid, one empty file, nesting.
PAYLOAD_SPEC=(
    "$NAME/big.bin:16777217"
    "$NAME/docs/readme.txt:1000"
    "$NAME/docs/empty.txt:0"
    "$NAME/docs/nested/deep/c.bin:10000003"
    "$NAME/media/d.bin:6776212"
)

require ip opentracker transmission-daemon transmission-remote transmission-show mktorrent python3 cmp timeout
require_strand "magnet:" "does not take magnet links"

interop_init

# ---------------------------------------------------------------- payload + torrent
setup_payload "32 MiB" "${PAYLOAD_SPEC[@]}"
torrent_by_mktorrent "$PIECE_EXP" "$ANNOUNCE"
SAVED=$WORK/saved.torrent
MAGNET=$(transmission-show -m "$TORRENT" | grep -m1 '^magnet:') || die "transmission-show -m printed no magnet link"
log "magnet: $MAGNET"
[[ ${MAGNET,,} == *"xt=urn:btih:$INFOHASH"* ]] || die "magnet link does not carry info hash $INFOHASH"
[[ $MAGNET == *"tr="* ]] || die "magnet link has no tr="
[[ $MAGNET != *"x.pe="* ]] || die "magnet link must not name a peer (x.pe) in this case"

# ---------------------------------------------------------------- tracker + transmission seeder
start_opentracker "$TRACKER_IP" "$TRACKER_PORT" "$INFOHASH"
start_transmission_seed "$SEED_IP" "$SEED_PORT" "$RPC_PORT" "$TORRENT" "$SEED_DIR"
WAIT_ALIVE="$PID_transmission $PID_opentracker" wait_for 60 "tracker lists a seeder" \
    tracker_lists_seeder "$ANNOUNCE" "$INFOHASH"

# ---------------------------------------------------------------- strand, magnet only
log "strand downloads the magnet link (timeout ${DL_TIMEOUT}s)"
STRAND_LOG=$WORK/logs/strand-magnet.log
dl_start=$(date +%s.%N)
RUST_LOG=${RUST_LOG:-strand=debug} start_bg strand-magnet timeout --kill-after=10 "$DL_TIMEOUT" \
    "$STRAND" download --no-dht "$MAGNET" -o "$OUT_DIR" --save-torrent "$SAVED" --bind "$LEECH_IP" --port "$LEECH_PORT"
# Fine-grained bounded poll for the `metadata:` line (wait_for's 0.5 s step is too coarse).
meta_secs=""
meta_deadline=$(( $(date +%s) + META_TIMEOUT ))
while (( $(date +%s) < meta_deadline )); do
    if grep -q '^metadata: ' "$STRAND_LOG" 2>/dev/null; then
        meta_secs=$(awk -v a="$dl_start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
        break
    fi
    is_running "$PID_strand_magnet" || break
    sleep 0.02
done
if [[ -n $meta_secs ]]; then
    log "metadata phase: ${meta_secs}s from strand's start to '$(grep -m1 '^metadata: ' "$STRAND_LOG")' (target < 2 s)"
else
    log "no 'metadata:' line within ${META_TIMEOUT}s (strand running: $(is_running "$PID_strand_magnet" && echo yes || echo no))"
fi
set +e
wait "$PID_strand_magnet"
dl_rc=$?
set -e
total_secs=$(awk -v a="$dl_start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
log "strand exited with $dl_rc after ${total_secs}s"
(( dl_rc != 124 && dl_rc != 137 )) || die "strand timed out after ${DL_TIMEOUT}s"
(( dl_rc == 0 )) || die "strand exited with status $dl_rc"
[[ -n $meta_secs ]] || die "strand completed but never printed a 'metadata:' line"

nsx transmission-remote "$TR" -t all -i >"$WORK/logs/transmission-after.txt" 2>&1 || true
log "transmission: $(grep -E 'Uploaded:' "$WORK/logs/transmission-after.txt" | sed 's/^ *//')"

[[ -s $SAVED ]] || die "--save-torrent wrote nothing at $SAVED"
saved_hash=$(python3 "$TOOL" infohash "$SAVED")
[[ $saved_hash == "$INFOHASH" ]] || die "saved torrent has info hash $saved_hash, want $INFOHASH"
log "saved torrent: info hash matches"

log "comparing files"
compare_tree "$TORRENT" "$SEED_DIR" "$OUT_DIR" || die "downloaded files differ from the payload"
leak_check

mib=$(( $(du -sb "$SEED_DIR" | cut -f1) / 1048576 ))
log "RESULT: transmission -> strand (magnet): metadata in ${meta_secs}s, ${mib} MiB in ${total_secs}s total"
stop_name transmission
interop_pass
