#!/usr/bin/env bash
# Run the interop suite: strand's feature cases, then the matrix of every client in
# clients/ × direction (seeds, gets) × mode (MODES); print the matrix, and on a full run
# write it to tests/interop/MATRIX.md. Ends with `interop: N passed, M failed` and exits
# non-zero if any case or cell failed (after printing the whole matrix).
#
# Each case and each cell is a separate process with its own network namespace (only lo)
# and temp dir, so they run side by side: JOBS at a time (default 4), of which at most
# one "heavy" feature case (hundreds of MiB through strand) so they don't compete for
# the CPU. A job's log is printed when it ends: in full if it failed (with its clients'
# logs), else its RESULT line (VERBOSE=1: always in full).
#
# Environment: STRAND, JOBS, VERBOSE, KEEP_WORK, DL_TIMEOUT (passed on to the cases);
# ONLY=REGEX runs just the jobs whose label matches it (and writes no MATRIX.md); labels are
# CLIENT.DIRECTION.MODE for cells, the script name for feature cases.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/../.."

# The matrix: every driver, both directions, every mode. A new mode goes here (and see
# cell.sh); a new client is a new clients/NAME.sh and a line here.
CLIENTS=(transmission qbittorrent rtorrent aria2c libtorrent ctorrent deluge rqbit)
DIRECTIONS=(seeds gets)
MODES=(plain magnet encrypted)

# Cases that test strand's own features against real trackers and its own seeder:
# label | heavy (1: hundreds of MiB, one at a time) | what it checks (for MATRIX.md)
FEATURES=(
    "tracker_stops|1|the tracker dies mid-download (512 MiB); the download completes"
    "kill9|1|kill -9 five times mid-download (256 MiB); resume, no piece lost"
    "disk_full|1|disk full: one clear error, resume data kept; rerun after growing the disk"
    "udp_tracker|0|a torrent whose only tracker is UDP (BEP 15)"
    "tier_fallback|0|a dead tier of trackers, then a live one: first announce under 15 s"
    "create_roundtrip|0|strand create agrees with mktorrent and transmission-show"
    "dht_from_libtorrent|0|a trackerless magnet: strand finds libtorrent seeders over a loopback DHT"
    "dht_to_libtorrent|0|a trackerless magnet: libtorrent finds strand over a loopback DHT"
    "hybrid_from_libtorrent|0|a libtorrent 2.0 hybrid (v1+v2) torrent with pad files: byte-identical, no .pad on disk"
    "bind_address|0|--bind 127.0.0.77: opentracker lists strand there (HTTP and UDP announces), the libtorrent seeder sees strand connect from there"
)

JOBS=${JOBS:-4}
VERBOSE=${VERBOSE:-0}
CASE_TIMEOUT=${CASE_TIMEOUT:-600}
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/interop-run.XXXXXX")
mkdir -p "$RUN_DIR/logs" "$RUN_DIR/results" "$RUN_DIR/tmp"
export RESULT_DIR=$RUN_DIR/results
# The jobs' work dirs go under the run's own folder, away from anything else in /tmp.
export TMPDIR=$RUN_DIR/tmp
T_START=$(date +%s)

# Jobs: label|heavy|command
declare -a QUEUE=()
for f in "${FEATURES[@]}"; do
    IFS='|' read -r label heavy _ <<<"$f"
    QUEUE+=("$label|$heavy|bash $HERE/$label.sh")
done
for c in "${CLIENTS[@]}"; do
    for d in "${DIRECTIONS[@]}"; do
        for m in "${MODES[@]}"; do
            QUEUE+=("$c.$d.$m|0|bash $HERE/cell.sh $c $d $m")
        done
    done
done
if [[ -n ${ONLY:-} ]]; then
    declare -a kept=()
    for j in "${QUEUE[@]}"; do [[ ${j%%|*} =~ $ONLY ]] && kept+=("$j"); done
    QUEUE=("${kept[@]}")
fi
(( ${#QUEUE[@]} > 0 )) || { echo "interop: no case matches ONLY=$ONLY"; exit 1; }

declare -A PID_LABEL=() PID_HEAVY=() PID_START=() STATUS=() SECS=()
running=0
heavy_running=0
passed=0
failed=0
not_applicable=0

start_job() {
    local label=$1 heavy=$2 cmd=$3 pid
    # shellcheck disable=SC2086
    CASE_NAME=$label timeout --kill-after=30 "$CASE_TIMEOUT" $cmd </dev/null >"$RUN_DIR/logs/$label.log" 2>&1 &
    pid=$!
    PID_LABEL[$pid]=$label
    PID_HEAVY[$pid]=$heavy
    PID_START[$pid]=$(date +%s)
    running=$((running + 1))
    (( heavy )) && heavy_running=$((heavy_running + 1))
    echo "=== start $label ==="
}

finish_job() {
    local pid=$1 rc=$2 label=${PID_LABEL[$1]} secs
    secs=$(( $(date +%s) - PID_START[$pid] ))
    running=$((running - 1))
    (( PID_HEAVY[$pid] )) && heavy_running=$((heavy_running - 1))
    SECS[$label]=$secs
    if (( rc == 0 )) && awk -F'\t' '$4 == "N/A" {f = 1} END {exit !f}' "$RESULT_DIR/$label.tsv" 2>/dev/null; then
        STATUS[$label]=N/A
        not_applicable=$((not_applicable + 1))
        grep -E 'N/A:' "$RUN_DIR/logs/$label.log" | tail -n 1
        echo "=== N/A $label ==="
    elif (( rc == 0 )); then
        STATUS[$label]=PASS
        passed=$((passed + 1))
        if (( VERBOSE )); then cat "$RUN_DIR/logs/$label.log"; else grep -E 'RESULT:' "$RUN_DIR/logs/$label.log" | tail -n 3; fi
        echo "=== PASS $label (${secs}s) ==="
    else
        STATUS[$label]=FAIL
        failed=$((failed + 1))
        echo "===== log of $label (exit $rc) ====="
        cat "$RUN_DIR/logs/$label.log"
        echo "=== FAIL $label (exit $rc, ${secs}s) ==="
    fi
}

while (( ${#QUEUE[@]} > 0 || running > 0 )); do
    # Start what fits: JOBS at a time, one heavy job at a time.
    while (( running < JOBS && ${#QUEUE[@]} > 0 )); do
        picked=-1
        for i in "${!QUEUE[@]}"; do
            IFS='|' read -r _ heavy _ <<<"${QUEUE[$i]}"
            if (( ! heavy || heavy_running == 0 )); then picked=$i; break; fi
        done
        (( picked >= 0 )) || break
        IFS='|' read -r label heavy cmd <<<"${QUEUE[$picked]}"
        unset 'QUEUE[picked]'
        QUEUE=("${QUEUE[@]}")
        start_job "$label" "$heavy" "$cmd"
    done
    done_pid=""
    rc=0
    wait -n -p done_pid || rc=$?
    [[ -n $done_pid ]] && finish_job "$done_pid" "$rc"
done

TOTAL_SECS=$(( $(date +%s) - T_START ))

# Cells that failed before writing a result get a FAIL line with the reason from their log.
for c in "${CLIENTS[@]}"; do
    for d in "${DIRECTIONS[@]}"; do
        for m in "${MODES[@]}"; do
            label=$c.$d.$m
            [[ -n ${STATUS[$label]:-} ]] || continue
            if [[ ${STATUS[$label]} == FAIL || ! -s $RESULT_DIR/$label.tsv ]]; then
                reason=$(grep -oE 'FAIL: .*' "$RUN_DIR/logs/$label.log" | tail -n 1 | cut -c7-)
                printf '%s\t%s\t%s\tFAIL\t%s\t-\t%s\t%s\n' "$c" "$d" "$m" "${SECS[$label]}" \
                    "${reason:-exited without a result (timeout?)}" "" >"$RESULT_DIR/$label.tsv"
            fi
        done
    done
done
for f in "${FEATURES[@]}"; do
    IFS='|' read -r label _ what <<<"$f"
    [[ -n ${STATUS[$label]:-} ]] || continue
    printf '%s\t%s\t%s\t%s\n' "$label" "${STATUS[$label]}" "${SECS[$label]}" "$what" >"$RUN_DIR/features.tsv.$label"
done
cat "$RUN_DIR"/features.tsv.* >"$RUN_DIR/features.tsv" 2>/dev/null || true

MATRIX_ARGS=(--results "$RESULT_DIR" --features "$RUN_DIR/features.tsv" --clients "${CLIENTS[*]}"
    --modes "${MODES[*]}" --seconds "$TOTAL_SECS" --jobs "$JOBS"
    --commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo +changes)"
    --strand "$("${STRAND:-target/release/strand}" --version 2>/dev/null | head -n 1)")
echo
python3 "$HERE/matrix.py" "${MATRIX_ARGS[@]}" | tee "$RUN_DIR/MATRIX.md"
if [[ -z ${ONLY:-} ]]; then
    cp "$RUN_DIR/MATRIX.md" "$HERE/MATRIX.md"
    echo "(written to tests/interop/MATRIX.md)"
fi
if [[ ${KEEP_WORK:-0} == 1 ]]; then echo "logs kept in $RUN_DIR"; else rm -rf "$RUN_DIR"; fi
echo "interop: wall time ${TOTAL_SECS}s with JOBS=$JOBS"
# N/A cells (a mode the client cannot do at all, with the reason in the matrix) count as skipped.
echo "interop: $passed passed, $failed failed, $not_applicable skipped"
(( failed == 0 && passed > 0 ))
