#!/usr/bin/env bash
# make soak: one long-lived `strand seed` watched for SOAK_MINUTES while a swarm churns around
# it on loopback, inside a network namespace that has only `lo` (needs root).
#
#   strand tracker   127.0.0.1:6969
#   strand seed      127.0.0.1:51413, a SOAK_MIB MiB torrent of 16 files, 256 KiB pieces:
#                    THE process under observation
#   churn            every LEECH_EVERY s (while fewer than MAX_LEECHERS run) a `strand download`
#                    of one random file (--only K; one run in eight: the whole torrent),
#                    stopped at a random moment: SIGKILL or SIGINT after 0.05-1.5 s (mostly
#                    mid-download), or with --seed and SIGINT/SIGKILL after 3-20 s; each in a
#                    fresh folder, deleted afterwards
#   hostile peers    every HOSTILE_EVERY s (while fewer than MAX_HOSTILE run) bench/soak_hostile.py
#                    against the seed for 5-30 s, mode chosen at random: garbage frames,
#                    request floods, a peer that never reads, bad requests, connect/disconnect
#                    churn, wrong info hash, silent connections, one byte per second
#
# Every SAMPLE_EVERY s: the seed's VmRSS, RssAnon, RssFile and Threads (/proc/PID/status), its open fds
# (/proc/PID/fd), its CPU seconds and its established peer connections (ss) go to a CSV.
# Before the churn and after it (every child stopped, the seed left alone until its peer
# count is 0, at most QUIET_WAIT s) the same figures are taken with no peer: "quiet" rows.
#
# Verdict (bench/soak_verdict.py, which explains it): for RssAnon and the thread count, a fit
# of each against the peer count and time over the second half of the churn; what time adds
# beyond the peer count is the drift, and over GROWTH_PCT percent of the mean is "grows".
# Threads and fds must also be back where they started (+2) once no peer is left. VmRSS and
# RssFile are reported beside RssAnon. Exit 1 if anything grows, if the seed exits, or if a
# leecher exits in a way it was not told to.
#
# Environment: STRAND, SOAK_MINUTES (30), SOAK_MIB (256), SAMPLE_EVERY (10), WARMUP (s, half the churn),
#   MAX_LEECHERS (2), LEECH_EVERY (3), MAX_HOSTILE (3), HOSTILE_EVERY (4), SOAK_SEED (1),
#   GROWTH_PCT (10), QUIET_WAIT (60), SOAK_CSV (where the CSV is copied; default
#   /tmp/strand-soak-DATE.csv), KEEP_WORK=1.
CASE_NAME=soak
. "$(dirname "$0")/../tests/interop/lib.sh"
BENCH_DIR=$REPO_ROOT/bench
STRAND=${STRAND:-$REPO_ROOT/target/release/strand}
HOSTILE=$BENCH_DIR/soak_hostile.py
SOAK_MINUTES=${SOAK_MINUTES:-30}
SOAK_MIB=${SOAK_MIB:-256}
SAMPLE_EVERY=${SAMPLE_EVERY:-10}
WARMUP=${WARMUP:-$(( SOAK_MINUTES * 30 ))}
MAX_LEECHERS=${MAX_LEECHERS:-2}
LEECH_EVERY=${LEECH_EVERY:-3}
MAX_HOSTILE=${MAX_HOSTILE:-3}
HOSTILE_EVERY=${HOSTILE_EVERY:-4}
SOAK_SEED=${SOAK_SEED:-1}
GROWTH_PCT=${GROWTH_PCT:-10}
QUIET_WAIT=${QUIET_WAIT:-60}
SOAK_CSV=${SOAK_CSV:-${TMPDIR:-/tmp}/strand-soak-$(date +%Y%m%d-%H%M%S).csv}
FILES=16
PIECE_LEN=262144
SEED_PORT=51413
TRACKER_PORT=6969
ANNOUNCE="http://127.0.0.1:$TRACKER_PORT/announce"
HOSTILE_MODES=(garbage flood noread badreq churn wronghash silent slowloris)

require ip python3 ss timeout awk
[[ -x $STRAND ]] || die "strand binary not found at $STRAND (make build)"
(( SOAK_MIB % FILES == 0 )) || die "SOAK_MIB must be a multiple of $FILES"

interop_init
SEED_DIR=$WORK/seed
TORRENT=$WORK/soak.torrent
CSV=$WORK/soak.csv
mkdir -p "$SEED_DIR/strand-soak" "$WORK/leech"
log "generating a $SOAK_MIB MiB payload in $FILES files"
for (( f = 0; f < FILES; f++ )); do
    python3 "$BENCH_DIR/payload.py" big "$SEED_DIR/strand-soak" "f$f.bin" $(( SOAK_MIB / FILES ))
done
"$STRAND" create "$SEED_DIR/strand-soak" -t "$ANNOUNCE" --piece-length $PIECE_LEN -o "$TORRENT" \
    >"$WORK/logs/create.log" 2>&1 || die "strand create failed"
HASH=$(python3 "$TOOL" infohash "$TORRENT")
PIECES=$(( SOAK_MIB * 1048576 / PIECE_LEN ))
log "info hash $HASH, $PIECES pieces"

start_strand_tracker 127.0.0.1 $TRACKER_PORT "$HASH"
start_bg seed "$STRAND" seed --no-dht "$TORRENT" -d "$SEED_DIR" --bind 127.0.0.1 --port $SEED_PORT -q
SEED_PID=$PID_seed
WAIT_ALIVE="$SEED_PID $PID_tracker_strand" wait_for 120 "tracker lists the seed" tracker_lists_seeder "$ANNOUNCE" "$HASH"
log "observed process: strand seed, pid $SEED_PID"

# --- children of the churn: started in the namespace, recorded by PID, reaped by PID -------
declare -A C_KIND=() C_DEADLINE=() C_SIG=() C_SIGNALED=() C_DIR=() C_NAME=()
declare -A TALLY=()
HOSTILE_OUT=$WORK/hostile.txt
UNEXPECTED=$WORK/unexpected.txt
: >"$HOSTILE_OUT"
: >"$UNEXPECTED"
now_ms() { local t=${EPOCHREALTIME/./}; echo $(( t / 1000 )); }
# alive PID: running and not a zombie (kill -0 succeeds on a zombie child).
alive() {
    local _a _b st=""
    { read -r _a _b st _ <"/proc/$1/stat"; } 2>/dev/null || return 1
    [[ -n $st && $st != Z ]]
}
spawn() {   # spawn KIND NAME DEADLINE_MS SIGNAL CMD...
    local kind=$1 name=$2 deadline=$3 sig=$4; shift 4
    ip netns exec "$NS" "$@" >"$WORK/logs/$name.log" 2>&1 </dev/null &
    local pid=$!
    BG_PIDS+=("$pid"); BG_NAMES[$pid]=$name
    C_KIND[$pid]=$kind C_NAME[$pid]=$name C_DEADLINE[$pid]=$deadline C_SIG[$pid]=$sig
}
forget() {  # forget PID: drop it from every table once reaped (its PID may be reused later)
    local p=$1 q keep=()
    for q in "${BG_PIDS[@]}"; do [[ $q == "$p" ]] || keep+=("$q"); done
    BG_PIDS=("${keep[@]}")
    unset "BG_NAMES[$p]" "C_KIND[$p]" "C_NAME[$p]" "C_DEADLINE[$p]" "C_SIG[$p]" "C_SIGNALED[$p]" "C_DIR[$p]"
}
reap() {    # reap PID: wait for an exited child, tally how it ended
    local p=$1 rc=0 kind=${C_KIND[$1]} name=${C_NAME[$1]} sig=${C_SIGNALED[$1]:-none} logf
    wait "$p" 2>/dev/null || rc=$?
    logf=$WORK/logs/$name.log
    if [[ $kind == hostile ]]; then
        tail -n 1 "$logf" >>"$HOSTILE_OUT" 2>/dev/null || true
        TALLY[hostile]=$(( ${TALLY[hostile]:-0} + 1 ))
    else
        local what
        case "$sig:$rc" in
            none:0) what=completed ;;
            INT:130) what=sigint_130 ;;
            INT:0) what=completed_before_sigint ;;
            KILL:137) what=sigkill ;;
            *) what="unexpected_${sig}_exit_$rc"
               { echo "$name ($sig, exit $rc): $(tr '\r' '\n' <"$logf" | grep -v '^$' | tail -n 3 | tr '\n' '|')"; } >>"$UNEXPECTED" ;;
        esac
        TALLY[$what]=$(( ${TALLY[$what]:-0} + 1 ))
        rm -rf "${C_DIR[$p]}"
    fi
    rm -f "$logf"
    forget "$p"
    return 0
}
count_kind() { local p n=0; for p in "${!C_KIND[@]}"; do [[ ${C_KIND[$p]} == "$1" ]] && n=$((n + 1)); done; echo $n; }
rand_ms() { echo $(( $1 + (RANDOM * 32768 + RANDOM) % ($2 - $1 + 1) )); }   # uniform in [a, b]

start_leecher() {
    local n=$1 t only=() extra=() sig delay r dir
    t=$(now_ms) dir=$WORK/leech/$1
    r=$(( RANDOM % 4 ))
    (( RANDOM % 8 == 0 )) || only=(--only $(( RANDOM % FILES + 1 )))
    case $r in
        0) sig=KILL delay=$(rand_ms 50 1500) ;;
        1) sig=INT delay=$(rand_ms 50 1500) ;;
        2) sig=INT delay=$(rand_ms 3000 20000) extra=(--seed) ;;
        3) sig=KILL delay=$(rand_ms 3000 20000) extra=(--seed) ;;
    esac
    mkdir -p "$dir"
    spawn leech "leech-$n" $(( t + delay )) "$sig" "$STRAND" download --no-dht "$TORRENT" -o "$dir" \
        --bind 127.0.0.1 --port $(( 40000 + n % 2000 )) -q "${only[@]}" "${extra[@]}"
    C_DIR[$!]=$dir
    TALLY[leechers]=$(( ${TALLY[leechers]:-0} + 1 ))
}
start_hostile() {
    local n=$1 mode secs
    mode=${HOSTILE_MODES[RANDOM % ${#HOSTILE_MODES[@]}]} secs=$(( 5 + RANDOM % 26 ))
    spawn hostile "hostile-$n" $(( $(now_ms) + (secs + 15) * 1000 )) TERM \
        timeout -k 3 $(( secs + 10 )) python3 "$HOSTILE" 127.0.0.1 $SEED_PORT "$HASH" $PIECES $PIECE_LEN "$mode" "$secs" "$RANDOM"
    TALLY["mode_$mode"]=$(( ${TALLY["mode_$mode"]:-0} + 1 ))
}
# tend: reap what exited; signal what is past its deadline; SIGKILL what ignored a SIGINT for 15 s.
tend() {
    local p t=$(now_ms)
    for p in "${!C_KIND[@]}"; do
        if ! alive "$p"; then
            reap "$p"
        elif [[ -z ${C_SIGNALED[$p]:-} ]] && (( t >= ${C_DEADLINE[$p]} )); then
            kill -"${C_SIG[$p]}" "$p" 2>/dev/null || true
            C_SIGNALED[$p]=${C_SIG[$p]} C_DEADLINE[$p]=$(( t + 15000 ))
        elif [[ -n ${C_SIGNALED[$p]:-} ]] && (( t >= ${C_DEADLINE[$p]} )); then
            if [[ ${C_KIND[$p]} == leech ]]; then
                echo "${C_NAME[$p]}: still running 15 s after SIG${C_SIGNALED[$p]}, SIGKILL" >>"$UNEXPECTED"
            fi
            kill -KILL "$p" 2>/dev/null || true
            C_DEADLINE[$p]=$(( t + 60000 ))
        fi
    done
    return 0
}

# --- sampling ---------------------------------------------------------------------------------
echo "phase,t_s,rss_kib,rss_anon_kib,rss_file_kib,threads,fds,peers,cpu_s,leechers,hostile" >"$CSV"
T_START=$(now_ms)
sample() {  # sample PHASE
    alive "$SEED_PID" || die "the observed strand seed (pid $SEED_PID) exited"
    local rss anon file th fds peers cpu status
    status=$(cat "/proc/$SEED_PID/status")
    rss=$(awk '/^VmRSS:/{print $2}' <<<"$status")
    anon=$(awk '/^RssAnon:/{print $2}' <<<"$status")
    file=$(awk '/^RssFile:/{print $2}' <<<"$status")
    th=$(awk '/^Threads:/{print $2}' <<<"$status")
    fds=$(ls "/proc/$SEED_PID/fd" | wc -l)
    peers=$(nsx ss -Htn state established "( sport = :$SEED_PORT )" | wc -l)
    cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$SEED_PID/stat")
    LAST_PEERS=$peers
    printf '%s,%d,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$1" $(( ($(now_ms) - T_START) / 1000 )) "$rss" "$anon" "$file" "$th" "$fds" \
        "$peers" "$cpu" "$(count_kind leech)" "$(count_kind hostile)" >>"$CSV"
    log "sample $1: rss ${rss} KiB (anon $anon, file $file), threads $th, fds $fds, peers $peers, cpu ${cpu}s"
}

sleep 2
sample quiet
RANDOM=$SOAK_SEED
END=$(( $(now_ms) + SOAK_MINUTES * 60000 ))
next_sample=$(( $(now_ms) + SAMPLE_EVERY * 1000 )) next_leech=$(now_ms) next_hostile=$(( $(now_ms) + 2000 ))
nl=0 nh=0
log "churn for $SOAK_MINUTES min: <= $MAX_LEECHERS leechers (one per ${LEECH_EVERY}s), <= $MAX_HOSTILE hostile peers (one per ${HOSTILE_EVERY}s)"
while (( $(now_ms) < END )); do
    tend
    t=$(now_ms)
    if (( t >= next_leech )) && (( $(count_kind leech) < MAX_LEECHERS )); then
        nl=$((nl + 1)); start_leecher $nl; next_leech=$(( t + LEECH_EVERY * 1000 ))
    fi
    if (( t >= next_hostile )) && (( $(count_kind hostile) < MAX_HOSTILE )); then
        nh=$((nh + 1)); start_hostile $nh; next_hostile=$(( t + HOSTILE_EVERY * 1000 ))
    fi
    if (( t >= next_sample )); then
        sample churn; next_sample=$(( next_sample + SAMPLE_EVERY * 1000 ))
    fi
    sleep 0.2
done

log "churn over: stopping every leecher and hostile peer by PID"
for p in "${!C_KIND[@]}"; do
    if alive "$p"; then
        kill -"${C_SIG[$p]}" "$p" 2>/dev/null || true; C_SIGNALED[$p]=${C_SIG[$p]}; C_DEADLINE[$p]=$(( $(now_ms) + 15000 ))
    fi
done
deadline=$(( $(date +%s) + 30 ))
while (( ${#C_KIND[@]} > 0 )) && (( $(date +%s) < deadline )); do tend; sleep 0.2; done
(( ${#C_KIND[@]} == 0 )) || die "children still running 30 s after the churn ended: ${!C_KIND[*]}"

log "quiet: waiting (<= ${QUIET_WAIT}s) until the seed has no peer left"
deadline=$(( $(date +%s) + QUIET_WAIT ))
sleep 2
sample quiet
while (( LAST_PEERS > 0 )) && (( $(date +%s) < deadline )); do sleep 5; sample quiet; done
sleep 5
sample quiet
leak_check
cp "$CSV" "$SOAK_CSV"
cp "$HOSTILE_OUT" "${SOAK_CSV%.csv}-hostile.txt"
log "CSV copied to $SOAK_CSV, the hostile peers' reports to ${SOAK_CSV%.csv}-hostile.txt"

for k in $(printf '%s\n' "${!TALLY[@]}" | sort); do log "tally $k: ${TALLY[$k]}"; done
log "hostile peers, by outcome (first words of each line, counted):"
sed -E 's/[0-9]+(\.[0-9]+)?/N/g' "$HOSTILE_OUT" | sort | uniq -c | sort -rn | head -n 30 | while read -r line; do log "  $line"; done || true
warn=$(grep -c . "$WORK/logs/seed.log" || true)
log "the seed's log (warnings and errors only): $warn lines"
# by kind: timestamps, addresses and numbers masked
sed -E 's/^\[[^]]*\] *//; s/127\.0\.0\.1:[0-9]+/ADDR/g; s/[0-9]+/N/g' "$WORK/logs/seed.log" | sort | uniq -c \
    | sort -rn | head -n 15 | while read -r line; do log "  seed: $line"; done || true
if [[ -s $UNEXPECTED ]]; then
    log "unexpected leecher exits:"; while read -r line; do log "  $line"; done <"$UNEXPECTED"
fi

verdict=0
python3 "$BENCH_DIR/soak_verdict.py" "$CSV" "$WARMUP" "$GROWTH_PCT" || verdict=$?
[[ -s $UNEXPECTED ]] && log "RESULT: some leechers ended in a way they were not told to (see above)"
(( verdict == 0 )) || die "RESULT: a figure grows (or too few samples), see the table; CSV at $SOAK_CSV"
[[ -s $UNEXPECTED ]] && die "RESULT: unexpected leecher exits"
log "RESULT: nothing grows over $SOAK_MINUTES min; CSV at $SOAK_CSV"
interop_pass
