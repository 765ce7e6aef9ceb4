#!/usr/bin/env bash
# One cell of the interop matrix: `cell.sh CLIENT DIRECTION MODE`.
#
#   CLIENT     a driver in clients/CLIENT.sh (see clients/README.md for what a driver defines)
#   DIRECTION  seeds: the client seeds, `strand download` fetches from it
#              gets:  `strand seed` seeds, the client downloads from it
#   MODE       plain:  the client and strand get the .torrent file
#              magnet: the downloader gets only a magnet link (xt, dn, tr): it must find
#                      the seeder through the tracker and fetch the info dictionary from it
#                      (BEP 9). For `seeds` strand also writes --save-torrent, whose info
#                      hash must match.
#              encrypted: the .torrent, and encryption required on both sides: the client
#                      set to "require" (its driver), strand --encryption require (RC4 only).
#                      Witness: strand's debug log shows `handshake done, RC4` for every
#                      connection and never `plaintext`; a driver's client_witness may add
#                      the client's own (libtorrent's peer log: `*** ENCRYPTION`).
#              A new mode: a `strand_mode_args` arm below for strand's side, the mode in
#              MODES of run.sh, and in each driver that can do it: its name in
#              SEEDS_MODES/GETS_MODES and its setting where the driver writes its config.
#
# Everything runs in a fresh network namespace with only lo (lib.sh):
#   opentracker  127.0.0.1:6969 (HTTP+UDP, whitelist: this torrent only)
#   the client   $CLIENT_IP:$CLIENT_PORT (127.0.1.1:51413), control ports on 127.0.0.1
#   strand       $STRAND_IP:$STRAND_PORT (127.0.2.1:6881)
# Each cell is its own namespace, so cells can run at the same time with the same ports.
#
# The payload: ~5 MiB, four files (one empty, one nested), sizes off the piece grid,
# 64 KiB pieces, made by mktorrent. Every file is compared byte for byte after the run
# (empty files only where the driver says the client creates them).
#
# Result: one TSV line in $RESULT_DIR/CLIENT.DIRECTION.MODE.tsv (run.sh reads them):
#   client direction mode PASS|N/A seconds MB/s note version
# A failing cell exits non-zero; run.sh then records FAIL with the last "FAIL:" line of
# the log. N/A is only for a cell the driver lists in NOT_APPLICABLE, with the reason
# (a mode the client cannot do at all); a mode the driver neither does nor excuses FAILs.
#
# Environment: STRAND, DL_TIMEOUT (default 120 s), KEEP_WORK=1, RESULT_DIR (default: none).
set -euo pipefail
CLIENT=${1:?usage: cell.sh CLIENT seeds|gets MODE}
DIRECTION=${2:?usage: cell.sh CLIENT seeds|gets MODE}
MODE=${3:?usage: cell.sh CLIENT seeds|gets MODE}
CASE_NAME="$CLIENT.$DIRECTION.$MODE"
. "$(dirname "$0")/lib.sh"

STRAND=${STRAND:-$REPO_ROOT/target/release/strand}
DL_TIMEOUT=${DL_TIMEOUT:-120}
RESULT_DIR=${RESULT_DIR:-}
DRIVER=$INTEROP_DIR/clients/$CLIENT.sh
[[ -f $DRIVER ]] || die "no driver $DRIVER"
[[ $DIRECTION == seeds || $DIRECTION == gets ]] || die "direction must be seeds or gets, not $DIRECTION"

TRACKER_IP=127.0.0.1
TRACKER_PORT=6969
ANNOUNCE="http://$TRACKER_IP:$TRACKER_PORT/announce"
CLIENT_IP=127.0.1.1
CLIENT_PORT=51413
STRAND_IP=127.0.2.1
STRAND_PORT=6881
NAME=strand-matrix
PIECE_EXP=16
PAYLOAD_SPEC=(
    "$NAME/big.bin:3500017"
    "$NAME/docs/readme.txt:1000"
    "$NAME/docs/empty.txt:0"
    "$NAME/docs/nested/deep/c.bin:1742333"
)

# Defaults a driver may override (clients/README.md).
SEEDS_MODES=""
GETS_MODES=""
declare -A NOT_APPLICABLE=()
GETS_NEEDS_DIAL=0
EMPTY_FILES=created
CLIENT_REQUIRES=()
CLIENT_PIDS=""
client_progress() { :; }
# client_witness : what the client saw on the wire, checked after client_stop (its logs are
# complete then): dies if it contradicts the cell, prints a note for the matrix (or nothing).
client_witness() { :; }
client_stop() { local p; for p in $CLIENT_PIDS; do stop_pid "$p" 20; done; }
# exited_ok PID : for the downloaders that exit once complete (their "done" test): false
# while PID runs, true once it exited 0; dies if it exited otherwise.
exited_ok() {
    local rc=0
    is_running "$1" && return 1
    wait "$1" || rc=$?
    (( rc == 0 )) || die "${BG_NAMES[$1]:-pid $1} exited with status $rc"
}
# shellcheck source=/dev/null
. "$DRIVER"

CLIENT_VERSION=$(client_version 2>&1 | head -n 1 || true)

# result STATUS SECONDS MBPS NOTE : the cell's line for run.sh (see the top).
result() {
    [[ -n $RESULT_DIR ]] || return 0
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$CLIENT" "$DIRECTION" "$MODE" "$@" "$CLIENT_VERSION" \
        >"$RESULT_DIR/$CASE_NAME.tsv"
}

# Strand's side of a mode: sets STRAND_MODE_ARGS, extra arguments for `strand seed` and
# `strand download`. No DHT in plain and magnet: peers come from the tracker only.
strand_mode_args() {
    case $MODE in
        plain | magnet) STRAND_MODE_ARGS=(--no-dht) ;;
        encrypted) STRAND_MODE_ARGS=(--no-dht --encryption require) ;;
        *) die "cell.sh knows no mode '$MODE' (add a strand_mode_args arm)" ;;
    esac
}

modes_var=${DIRECTION^^}_MODES
if [[ " ${!modes_var} " != *" $MODE "* ]]; then
    reason=${NOT_APPLICABLE[$DIRECTION:$MODE]:-}
    [[ -n $reason ]] || die "driver $CLIENT has no '$MODE' mode for '$DIRECTION' and gives no reason (NOT_APPLICABLE)"
    log "N/A: $reason"
    result N/A - - "$reason"
    exit 0
fi

require ip opentracker mktorrent python3 cmp timeout "${CLIENT_REQUIRES[@]}"
require_strand
interop_init
log "client: $CLIENT_VERSION"

setup_payload "5 MiB" "${PAYLOAD_SPEC[@]}"
torrent_by_mktorrent "$PIECE_EXP" "$ANNOUNCE"
BYTES=$(torrent_bytes "$TORRENT")
MAGNET="magnet:?xt=urn:btih:$INFOHASH&dn=$NAME&tr=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$ANNOUNCE")"
SOURCE=$TORRENT
[[ $MODE == magnet ]] && SOURCE=$MAGNET
log "the downloader gets: $SOURCE"
start_opentracker "$TRACKER_IP" "$TRACKER_PORT" "$INFOHASH"
strand_mode_args

# mbps SECONDS : payload megabytes (10^6) per second.
mbps() { awk -v b="$BYTES" -v s="$1" 'BEGIN { if (s > 0) printf "%.1f", b / 1e6 / s; else print "-" }'; }

if [[ $DIRECTION == seeds ]]; then
    client_seed
    WAIT_ALIVE="$PID_opentracker $CLIENT_PIDS" wait_for 60 "the tracker lists the client as a seeder" \
        tracker_lists_seeder "$ANNOUNCE" "$INFOHASH"
    DL_ARGS=(download "$SOURCE" -o "$OUT_DIR" --bind "$STRAND_IP" --port "$STRAND_PORT" "${STRAND_MODE_ARGS[@]}")
    [[ $MODE == magnet ]] && DL_ARGS+=(--save-torrent "$WORK/saved.torrent")
    start=$(date +%s.%N)
    rc=0
    RUST_LOG=${RUST_LOG:-strand=debug} run_ns strand-download timeout --kill-after=5 "$DL_TIMEOUT" \
        "$STRAND" "${DL_ARGS[@]}" || rc=$?
    secs=$(elapsed_since "$start")
    (( rc != 124 && rc != 137 )) || die "strand download timed out after ${DL_TIMEOUT}s"
    (( rc == 0 )) || die "strand download exited with status $rc after ${secs}s"
    log "strand downloaded in ${secs}s"
    if [[ $MODE == magnet ]]; then
        meta=$(grep -m1 '^metadata: ' "$WORK/logs/strand-download.log" || true)
        [[ -n $meta ]] || die "strand printed no 'metadata:' line for a magnet link"
        saved=$(python3 "$TOOL" infohash "$WORK/saved.torrent") || die "--save-torrent wrote no readable torrent"
        [[ $saved == "$INFOHASH" ]] || die "--save-torrent has info hash $saved, want $INFOHASH"
        log "strand: $meta; --save-torrent has the same info hash"
    fi
    compare_tree "$TORRENT" "$SEED_DIR" "$OUT_DIR" || die "strand's files differ from the payload"
    client_stop
else
    SEED_ARGS=(seed "$TORRENT" -d "$SEED_DIR" --port "$STRAND_PORT" -q "${STRAND_MODE_ARGS[@]}")
    if (( GETS_NEEDS_DIAL )); then
        # The client never dials what the tracker tells it (transmission): it starts first,
        # and strand is told to dial it.
        client_get "$SOURCE"
        start=$(date +%s.%N)
        WAIT_ALIVE="$PID_opentracker $CLIENT_PIDS" wait_for 60 "the tracker lists the client as a leecher" \
            tracker_lists_leecher "$ANNOUNCE" "$INFOHASH"
        RUST_LOG=${RUST_LOG:-strand=debug} start_bg strand-seed "$STRAND" "${SEED_ARGS[@]}" \
            --bind "$STRAND_IP" --peer "$CLIENT_IP:$CLIENT_PORT"
    else
        # strand listens on every address of the namespace's lo: a tracker lists a peer at
        # the source address of its announce, which need not be --bind's.
        RUST_LOG=${RUST_LOG:-strand=debug} start_bg strand-seed "$STRAND" "${SEED_ARGS[@]}" --bind 0.0.0.0
        WAIT_ALIVE="$PID_strand_seed $PID_opentracker" wait_for 60 "the tracker lists strand as a seeder" \
            tracker_lists_seeder "$ANNOUNCE" "$INFOHASH"
        client_get "$SOURCE"
        start=$(date +%s.%N)
    fi
    deadline=$(( $(date +%s) + DL_TIMEOUT ))
    log "wait (<= ${DL_TIMEOUT}s): $CLIENT completes the download"
    until client_done; do
        for p in $PID_strand_seed $CLIENT_PIDS; do
            is_running "$p" || die "${BG_NAMES[$p]:-pid $p} exited before $CLIENT completed"
        done
        (( $(date +%s) < deadline )) || die "$CLIENT did not complete within ${DL_TIMEOUT}s ($(client_progress 2>&1 | head -1))"
        sleep 0.2
    done
    secs=$(elapsed_since "$start")
    log "$CLIENT downloaded in ${secs}s"
    # Stopped before the comparison: some clients write their cache out only then.
    client_stop
    skip=""
    [[ $EMPTY_FILES == skipped ]] && skip=skip-empty
    compare_tree "$TORRENT" "$SEED_DIR" "$OUT_DIR" $skip || die "$CLIENT's files differ from the payload"
fi
leak_check
notes=()
[[ $EMPTY_FILES == skipped && $DIRECTION == gets ]] && notes+=("empty file not created by the client")
if [[ $MODE == encrypted ]]; then
    strand_log=$WORK/logs/strand-download.log
    [[ $DIRECTION == gets ]] && strand_log=$WORK/logs/strand-seed.log
    rc4=$(grep -c 'handshake done, RC4' "$strand_log" || true)
    plain=$(grep -c 'handshake done, plaintext' "$strand_log" || true)
    (( rc4 > 0 )) || die "strand's log shows no 'handshake done, RC4'"
    (( plain == 0 )) || die "strand's log shows $plain plaintext connections under --encryption require"
    log "witness: strand's log: $rc4 connection(s) 'handshake done, RC4', none plaintext"
    notes+=("RC4 both ways: strand logged \`handshake done, RC4\` for every connection")
fi
witness=$(client_witness) || die "the client's witness failed"
[[ -n $witness ]] && notes+=("$witness")
note=""
for n in "${notes[@]}"; do note+=${note:+; }$n; done
result PASS "$secs" "$(mbps "$secs")" "$note"
log "RESULT: $CLIENT $DIRECTION $MODE: $(( BYTES / 1024 )) KiB in ${secs}s ($(mbps "$secs") MB/s)"
interop_pass
