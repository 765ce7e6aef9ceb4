#!/usr/bin/env bash
# Interop case: strand ALONE seeds a multi-file torrent through a whitelist-only
# opentracker; transmission-daemon downloads it into an empty dir, and every
# non-empty file is compared byte for byte with the original (transmission does
# not create the zero-length files of a multi-file torrent as a downloader).
#
# transmission never dials 127.x peers it hears of from a tracker ("martian"),
# so the data only flows if strand dials transmission. The order is therefore:
# transmission starts and announces first (the tracker then lists it as a
# leecher), strand seed starts after it, hears of transmission in its first
# announce reply and has to connect out to it.
#
# Seen 2026-11 (strand 248f787 + the lead's uncommitted `seed`): transmission
# 3.00 asks for rate x 10 s worth of blocks (bursts of 4, 20, 120, then ~700
# requests, since strand sends no BEP 10 handshake with `reqq`); strand drops the
# connection at more than 512 queued requests, redials ~5 s later, and
# transmission waits ~10 s before `interested` again: ~2.4 MB per ~20 s. The case
# logs how many connections strand dropped and why.
#
# Everything runs inside a fresh network namespace that has only `lo`:
#   opentracker          127.0.0.1:$TRACKER_PORT (HTTP and UDP)
#   strand seed          127.0.1.2:$SEED_PORT
#   transmission-daemon  127.0.2.2:$LEECH_PORT, RPC on 127.0.0.1:$RPC_PORT
#
# Environment:
#   STRAND       path to the strand binary (default: target/release/strand)
#   DL_TIMEOUT   seconds transmission may take to reach 100% (default 300)
#   RUST_LOG     strand's log filter (default strand=debug, into its log file)
#   PEER_HINT=1  also give strand transmission's address with --peer (by default
#                strand must find it through the tracker)
#   KEEP_WORK=1  keep the temp dir (payload, logs, output) after the run
#   TR_LOG       transmission-daemon log level: error|info|debug (default info)
CASE_NAME=${CASE_NAME:-transmission_downloads}
. "$(dirname "$0")/lib.sh"

STRAND=${STRAND:-$REPO_ROOT/target/release/strand}
DL_TIMEOUT=${DL_TIMEOUT:-300}
TR_LOG=${TR_LOG:-info}
PEER_HINT=${PEER_HINT:-0}

TRACKER_IP=127.0.0.1
TRACKER_PORT=6969
SEED_IP=127.0.1.2
SEED_PORT=6882
LEECH_IP=127.0.2.2
LEECH_PORT=51414
RPC_PORT=9092
ANNOUNCE="http://$TRACKER_IP:$TRACKER_PORT/announce"
PIECE_EXP=18            # 256 KiB pieces
NAME=strand-seeds-transmission

# 32 MiB in all (33554432 bytes): transmission is slow (about 3 MB/s on loopback),
# so smaller than the other cases. No size is a multiple of the piece size,
# the small files straddle piece boundaries, one file is empty and one is nested.
PAYLOAD_SPEC=(
    "$NAME/a.bin:16777217"
    "$NAME/docs/readme.txt:777"
    "$NAME/docs/empty.txt:0"
    "$NAME/docs/nested/deep/c.bin:9000001"
    "$NAME/media/d.bin:7776437"
)

require ip opentracker transmission-daemon transmission-remote mktorrent python3 cmp timeout
require_strand 'strand seed' "has no 'seed' subcommand"

interop_init

# ---------------------------------------------------------------- payload + torrent
setup_payload "32 MiB" "${PAYLOAD_SPEC[@]}"
torrent_by_mktorrent "$PIECE_EXP" "$ANNOUNCE"

# ---------------------------------------------------------------- tracker
start_opentracker "$TRACKER_IP" "$TRACKER_PORT" "$INFOHASH"

# ---------------------------------------------------------------- transmission downloader
# The output dir must be writable by the daemon (it runs as root here) and empty.
start_transmission "$LEECH_IP" "$LEECH_PORT" "$RPC_PORT" "$OUT_DIR"
nsx transmission-remote "$TR" -a "$TORRENT" -w "$OUT_DIR" >>"$WORK/logs/transmission-remote.log" 2>&1 \
    || die "transmission-remote -a failed"
# The tracker learns transmission's address (127.0.2.x, it binds its announces to
# bind-address-ipv4) from its `started` announce.
WAIT_ALIVE="$PID_transmission $PID_opentracker" wait_for 60 "tracker lists transmission as a leecher" \
    tracker_lists_leecher "$ANNOUNCE" "$INFOHASH"

# ---------------------------------------------------------------- strand seeder
SEED_EXTRA=()
[[ $PEER_HINT == 1 ]] && SEED_EXTRA+=(--peer "$LEECH_IP:$LEECH_PORT")
start_strand_seed "$SEED_IP" "$SEED_PORT" "${SEED_EXTRA[@]}"

# ---------------------------------------------------------------- wait for 100%
TR_PCT=""
tr_complete() {
    local info
    info=$(nsx transmission-remote "$TR" -t all -i 2>&1) || return 1
    TR_PCT=$(sed -n 's/^ *Percent Done: *//p' <<<"$info")
    grep -q 'Percent Done: 100%' <<<"$info"
}
# A progress line every 10 s while waiting, so a stall shows in the log.
(
    while sleep 10; do
        nsx transmission-remote "$TR" -l 2>/dev/null | sed -n 2p | sed 's/^/[progress] /' >&2
    done
) &
PROGRESS_PID=$!
BG_PIDS+=("$PROGRESS_PID")
BG_NAMES[$PROGRESS_PID]=progress
log "transmission downloads from strand (timeout ${DL_TIMEOUT}s)"
WAIT_ALIVE="$PID_transmission $PID_strand_seed" wait_for "$DL_TIMEOUT" "transmission reports 100%" tr_complete
done_at=$(date +%s.%N)
stop_pid "$PROGRESS_PID" 2

nsx transmission-remote "$TR" -t all -i >"$WORK/logs/transmission-after.txt" 2>&1 || true
nsx transmission-remote "$TR" -t all -pi >"$WORK/logs/transmission-peers.txt" 2>&1 || true
log "transmission: $(grep -E 'Downloaded:' "$WORK/logs/transmission-after.txt" | sed 's/^ *//')"
# Stop the torrent, then the daemon: it flushes its write cache and closes the files.
nsx transmission-remote "$TR" -t all -S >>"$WORK/logs/transmission-remote.log" 2>&1 || true
stop_name transmission
is_running "$PID_strand_seed" || die "strand seed exited before the end of the test"

# How often strand dropped transmission, and why (from strand's debug log): each
# drop costs transmission a reconnect plus its 10 s interest/unchoke round.
drops=$(grep -c ' closed: ' "$WORK/logs/strand-seed.log" || true)
floods=$(grep -c 'requests queued' "$WORK/logs/strand-seed.log" || true)
log "strand closed ${drops:-0} peer connection(s), ${floods:-0} of them for too many queued requests"

log "comparing files (transmission does not create empty files)"
compare_tree "$TORRENT" "$SEED_DIR" "$OUT_DIR" skip-empty || die "downloaded files differ from the payload"
leak_check

secs=$(awk -v a="$SEED_START" -v b="$done_at" 'BEGIN{printf "%.1f", b-a}')
xfer=$(awk -v a="$SEED_LISTED" -v b="$done_at" 'BEGIN{printf "%.1f", b-a}')
bytes=$(du -sb "$SEED_DIR" | cut -f1)
mib=$(( bytes / 1048576 ))
log "RESULT: transmission <- strand: ${mib} MiB in ${secs}s from strand's start, ${xfer}s after the tracker listed it ($(awk -v m="$bytes" -v s="$xfer" 'BEGIN{ if (s > 0) printf "%.2f", m/1048576/s; else print "inf" }') MiB/s)"
stop_name strand-seed
interop_pass
