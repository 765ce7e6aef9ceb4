#!/usr/bin/env bash
# strand benchmark: the same torrents downloaded in turn by strand and other clients from a
# local swarm, inside a network namespace that has only `lo` (needs root).
#
#   bash bench/bench.sh full     # make bench: 1 GiB (1 MiB pieces) + 2,000 small files;
#                                #   strand, aria2c, rqbit, libtorrent; 3 rounds; plaintext,
#                                #   then RC4 required; perf profiles; writes the tables into
#                                #   bench/RESULTS.md
#   bash bench/bench.sh smoke    # make bench-smoke: 64 MiB + 200 small files; strand and
#                                #   aria2c; 1 round, plaintext; fails if a download fails or
#                                #   differs. Never asserts on timings, never touches RESULTS.md.
#
# Encryption: the runs come in halves, one per policy in ENCRYPTIONS, and in each half every
# client and every seeder has the same policy (the swarm is restarted between halves):
#   plain  strand --encryption off; libtorrent out_enc_policy 2 (plaintext), allowed_enc_level 1;
#          transmission "encryption": 0; aria2c as it comes (it opens with an MSE handshake
#          that settles on plaintext, or retries in plaintext: no option turns MSE off).
#   rc4    strand --encryption require; aria2c --bt-require-crypto=true
#          --bt-min-crypto-level=arc4; libtorrent in/out_enc_policy 0 (forced),
#          allowed_enc_level 2 (RC4); transmission "encryption": 2. rqbit has no MSE: not run,
#          reported as "n/a (no MSE)".
#
# Swarm (all on 127.0.0.0/8, in the namespace; started afresh for each half):
#   opentracker        127.0.0.1:6969 (whitelist: the bench torrents)
#   libtorrent seeder  127.0.1.1:6881  (python3-libtorrent, high_performance_seed settings)
#   strand seed        127.0.0.1:7001 / :7002 (one process per torrent; strand announces
#                      without an ip= parameter, so the tracker lists it at 127.0.0.1)
#   transmission       127.0.1.3:51413 (full only; ~3 MB/s on loopback, see INTEROP-NOTES)
#   downloaders        a fresh address/port per run: 127.0.<10+client>.<run>; strand dials from
#                      127.0.0.1 and listens on a fresh port.
#
# Environment: STRAND (binary), RQBIT (binary; default: ~/.cache/strand-bench/cargo/bin/rqbit),
#   ROUNDS, CLIENTS (space separated), ENCRYPTIONS ("plain rc4" or one of them), BIG_MIB,
#   SMALL_COUNT, DL_TIMEOUT, PROFILE=0|1, TRANSMISSION=0|1, RESULTS (file to update; full mode
#   only), KEEP_WORK=1.
CASE_NAME=bench
MODE=${1:-full}
. "$(dirname "$0")/../tests/interop/lib.sh"
BENCH_DIR=$REPO_ROOT/bench
STRAND=${STRAND:-$REPO_ROOT/target/release/strand}
RQBIT=${RQBIT:-$HOME/.cache/strand-bench/cargo/bin/rqbit}
LTPY=/usr/bin/python3   # Debian's python: the one python3-libtorrent is built for

case $MODE in
    full)
        ROUNDS=${ROUNDS:-3}; CLIENTS=${CLIENTS:-"strand aria2c rqbit libtorrent"}
        BIG_MIB=${BIG_MIB:-1024}; SMALL_COUNT=${SMALL_COUNT:-2000}
        ENCRYPTIONS=${ENCRYPTIONS:-"plain rc4"}
        PROFILE=${PROFILE:-1}; TRANSMISSION=${TRANSMISSION:-1}
        RESULTS=${RESULTS:-$BENCH_DIR/RESULTS.md} ;;
    smoke)
        ROUNDS=${ROUNDS:-1}; CLIENTS=${CLIENTS:-"strand aria2c"}
        BIG_MIB=${BIG_MIB:-64}; SMALL_COUNT=${SMALL_COUNT:-200}
        ENCRYPTIONS=${ENCRYPTIONS:-plain}
        PROFILE=${PROFILE:-0}; TRANSMISSION=${TRANSMISSION:-0}
        RESULTS=${RESULTS:-} ;;
    *) die "usage: bench.sh full|smoke" ;;
esac
DL_TIMEOUT=${DL_TIMEOUT:-300}
for enc in $ENCRYPTIONS; do
    [[ $enc == plain || $enc == rc4 ]] || die "ENCRYPTIONS: unknown policy $enc (plain, rc4)"
done

require ip opentracker mktorrent aria2c python3 cmp diff timeout /usr/bin/time
[[ -x $STRAND ]] || die "strand binary not found at $STRAND (make build)"
$LTPY -c 'import libtorrent' 2>/dev/null || die "python3-libtorrent missing (tests/interop/install-deps.sh)"
(( TRANSMISSION == 0 )) || require transmission-daemon transmission-remote
RQBIT_NOTE=""
if [[ " $CLIENTS " == *" rqbit "* && ! -x $RQBIT ]]; then
    RQBIT_NOTE="rqbit not available at $RQBIT (install failed or skipped; see bench/install-rqbit.sh): left out"
    log "$RQBIT_NOTE"
    CLIENTS=$(sed 's/\brqbit\b//' <<<"$CLIENTS")
fi

interop_init
T_START=$(date +%s)
TRACKER="http://127.0.0.1:6969/announce"
SEED=$WORK/seed
mkdir -p "$SEED" "$WORK/time" "$WORK/torrents"
RUNS=$WORK/runs.tsv
printf 'payload\tenc\tclient\tround\tbytes\tsecs\tuser\tsys\tmaxrss_kb\n' >"$RUNS"

# ------------------------------------------------------------------ payloads and torrents
log "generating payloads: big ${BIG_MIB} MiB, $SMALL_COUNT small files"
python3 "$BENCH_DIR/payload.py" big "$SEED" bench-big.bin "$BIG_MIB"
python3 "$BENCH_DIR/payload.py" small "$SEED" bench-small "$SMALL_COUNT" >/dev/null
mktorrent -d -l 20 -a "$TRACKER" -o "$WORK/torrents/big.torrent" "$SEED/bench-big.bin" >/dev/null \
    || die "mktorrent big failed"
mktorrent -d -l 18 -a "$TRACKER" -o "$WORK/torrents/small.torrent" "$SEED/bench-small" >/dev/null \
    || die "mktorrent small failed"
declare -A SIZE=([big]=$(stat -c %s "$SEED/bench-big.bin") [small]=$(du -sb --apparent-size "$SEED/bench-small" | cut -f1))
# du counts the directories too: use the torrent's own total
SIZE[small]=$(python3 "$TOOL" files "$WORK/torrents/small.torrent" | awk -F'\t' '{s+=$1} END{print s}')
declare -A HASH
for p in big small; do HASH[$p]=$(python3 "$TOOL" infohash "$WORK/torrents/$p.torrent"); done
log "big ${SIZE[big]} bytes ${HASH[big]}; small ${SIZE[small]} bytes ${HASH[small]}"

# ------------------------------------------------------------------ the swarm, per policy
mkdir -p "$WORK/tracker"
printf '%s\n' "${HASH[big]}" "${HASH[small]}" >"$WORK/tracker/whitelist.txt"
chmod 755 "$WORK/tracker"; chmod 644 "$WORK/tracker/whitelist.txt"
seeds_listed() {
    local p c
    for p in big small; do
        c=$(nsx python3 "$TOOL" scrape "$TRACKER" "${HASH[$p]}" | awk '{print $1}')
        [[ ${c:-0} -ge $NSEEDS ]] || return 1
    done
}
# start_swarm ENC: a fresh tracker (so that no seeder of the other policy stays listed) and
# the seeders, all with policy ENC; waits until the tracker lists every seeder.
SWARM=()
start_swarm() {
    local enc=$1 strand_enc=off tr_enc=0
    [[ $enc == rc4 ]] && { strand_enc=require; tr_enc=2; }
    start_bg "opentracker-$enc" opentracker -i 127.0.0.1 -p 6969 -P 6969 -d "$WORK/tracker" -w whitelist.txt
    local tracker_pid=$!
    WAIT_ALIVE="$tracker_pid" wait_for 15 "opentracker answers" nsx python3 "$TOOL" scrape "$TRACKER" "${HASH[big]}"
    NSEEDS=2
    start_bg "seed-libtorrent-$enc" $LTPY "$BENCH_DIR/lt_client.py" --encryption "$enc" seed 127.0.1.1:6881 "$SEED" \
        "$WORK/torrents/big.torrent" "$WORK/torrents/small.torrent"
    SWARM=("$tracker_pid" "$!")
    start_bg "seed-strand-big-$enc" "$STRAND" seed --no-dht --encryption "$strand_enc" "$WORK/torrents/big.torrent" -d "$SEED" --bind 127.0.0.1 --port 7001 -q
    SWARM+=("$!")
    start_bg "seed-strand-small-$enc" "$STRAND" seed --no-dht --encryption "$strand_enc" "$WORK/torrents/small.torrent" -d "$SEED" --bind 127.0.0.1 --port 7002 -q
    SWARM+=("$!")
    if (( TRANSMISSION )); then
        NSEEDS=3
        local cfg=$WORK/transmission-$enc; mkdir -p "$cfg"
        cat >"$cfg/settings.json" <<JSON
{ "alt-speed-enabled": false, "bind-address-ipv4": "127.0.1.3", "bind-address-ipv6": "::1",
  "blocklist-enabled": false, "dht-enabled": false, "download-dir": "$SEED", "encryption": $tr_enc,
  "idle-seeding-limit-enabled": false, "incomplete-dir-enabled": false, "lpd-enabled": false,
  "message-level": 1, "peer-port": 51413, "peer-port-random-on-start": false, "pex-enabled": false,
  "port-forwarding-enabled": false, "ratio-limit-enabled": false, "rename-partial-files": false,
  "rpc-authentication-required": false, "rpc-bind-address": "127.0.0.1", "rpc-enabled": true,
  "rpc-host-whitelist-enabled": false, "rpc-port": 9091, "rpc-whitelist-enabled": false,
  "speed-limit-down-enabled": false, "speed-limit-up-enabled": false, "start-added-torrents": true,
  "upload-slots-per-torrent": 50, "utp-enabled": false, "watch-dir-enabled": false }
JSON
        start_bg "seed-transmission-$enc" transmission-daemon -f -g "$cfg" --log-error
        SWARM+=("$!")
        WAIT_ALIVE="$!" wait_for 20 "transmission RPC" nsx transmission-remote 127.0.0.1:9091 -l
        for p in big small; do
            nsx transmission-remote 127.0.0.1:9091 -a "$WORK/torrents/$p.torrent" -w "$SEED" >/dev/null \
                || die "transmission-remote -a $p failed"
        done
    fi
    WAIT_ALIVE="${SWARM[*]}" wait_for 240 "tracker lists $NSEEDS seeders ($enc) for both torrents" seeds_listed
}
# stop_swarm: stop the seeders and the tracker by their PIDs, newest first.
stop_swarm() {
    local i
    for (( i = ${#SWARM[@]} - 1; i >= 0; i-- )); do stop_pid "${SWARM[i]}" 10; done
    SWARM=()
}

# ------------------------------------------------------------------ one download
drop_caches() { sync; { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null || true; }
# warm_payload PAYLOAD: read the seeders' copy once after the drop, so that every client
# downloads from seeders whose data is in the page cache ("warm cache", as issue 16 measures)
# and the seeders' disk reads do not set the pace; what the downloader writes starts cold.
warm_payload() {
    if [[ $1 == big ]]; then cat "$SEED/bench-big.bin"; else find "$SEED/bench-small" -type f -exec cat {} +; fi >/dev/null
}
RUN_NO=0
CLIENT_NO=0
declare -A CLIENT_IDX=([strand]=1 [aria2c]=2 [rqbit]=3 [libtorrent]=4)

# client_cmd CLIENT TORRENT OUT IP PORT ENC: print nothing, set CMD array
client_cmd() {
    local c=$1 t=$2 out=$3 ip=$4 port=$5 enc=$6
    case $c in
        strand)
            local policy=off
            [[ $enc == rc4 ]] && policy=require
            CMD=("$STRAND" download --no-dht --encryption "$policy" "$t" -o "$out" --bind 127.0.0.1 --port "$port" -q) ;;
        aria2c) CMD=(aria2c --no-conf --enable-dht=false --enable-dht6=false --bt-enable-lpd=false
                    --enable-peer-exchange=false --disable-ipv6=true --interface="$ip"
                    --listen-port="$port" --seed-time=0 --bt-save-metadata=false
                    --file-allocation=none --summary-interval=0 --console-log-level=warn)
                [[ $enc == rc4 ]] && CMD+=(--bt-require-crypto=true --bt-min-crypto-level=arc4)
                CMD+=(-d "$out" "$t") ;;
        rqbit) CMD=("$RQBIT" --disable-dht --disable-dht-persistence --disable-upnp-port-forward
                    --disable-lsd --listen-ip "$ip" --listen-port "$port" -v warn
                    download --exit-on-finish --disable-http-api -o "$out" "$t") ;;
        libtorrent) CMD=($LTPY "$BENCH_DIR/lt_client.py" --encryption "$enc" download "$ip:$port" "$out" "$t") ;;
        *) die "unknown client $c" ;;
    esac
}

# runs CLIENT ENC: true if CLIENT can take part with policy ENC (rqbit has no MSE).
runs() { [[ $2 == plain || $1 != rqbit ]]; }

# bench_one PAYLOAD CLIENT ROUND ENC: download, measure, compare, wipe.
bench_one() {
    local p=$1 c=$2 r=$3 enc=$4
    RUN_NO=$((RUN_NO + 1))
    local ip="127.0.$((10 + CLIENT_IDX[$c])).$RUN_NO" port=$((20000 + RUN_NO))
    local out=$WORK/out/$c-$p-$r tag=$p-$enc-$c-$r tf=$WORK/time/$p-$enc-$c-$r.txt
    rm -rf "$WORK/out"; mkdir -p "$out"
    client_cmd "$c" "$WORK/torrents/$p.torrent" "$out" "$ip" "$port" "$enc"
    drop_caches
    warm_payload "$p"
    local t0 t1 rc=0
    t0=$(date +%s.%N)
    run_ns "dl-$tag" /usr/bin/time -v -o "$tf" timeout -k 10 "$DL_TIMEOUT" "${CMD[@]}" || rc=$?
    t1=$(date +%s.%N)
    (( rc == 0 )) || { tail -n 30 "$WORK/logs/dl-$tag.log" >&2; die "$c ($p $enc round $r) exited with $rc"; }
    local src=$SEED/bench-big.bin got=$out/bench-big.bin
    [[ $p == small ]] && { src=$SEED/bench-small; got=$out/bench-small; }
    if [[ $p == big ]]; then
        cmp "$src" "$got" >&2 || die "$c ($p $enc round $r): download differs from the payload"
    else
        diff -rq "$src" "$got" >&2 || die "$c ($p $enc round $r): downloaded files differ from the payload"
    fi
    local secs user sys rss
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')
    user=$(awk -F': ' '/User time/{print $2}' "$tf")
    sys=$(awk -F': ' '/System time/{print $2}' "$tf")
    rss=$(awk -F': ' '/Maximum resident/{print $2}' "$tf")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$p" "$enc" "$c" "$r" "${SIZE[$p]}" "$secs" "$user" "$sys" "$rss" >>"$RUNS"
    log "RESULT $p $enc $c round $r: ${secs}s $(awk -v b="${SIZE[$p]}" -v s="$secs" 'BEGIN{printf "%.1f MB/s", b/s/1e6}') cpu ${user}+${sys}s rss ${rss} KiB"
    rm -rf "$WORK/out"
}

# The exact command lines, for RESULTS.md (T=torrent, OUT=output dir, IP/PORT per run).
for enc in $ENCRYPTIONS; do
    for c in $CLIENTS; do
        runs "$c" "$enc" || continue
        client_cmd "$c" T OUT IP PORT "$enc"
        printf '%s (%s): /usr/bin/time -v timeout %s %s\n' "$c" "$enc" "$DL_TIMEOUT" "${CMD[*]}" \
            | sed -e "s#$REPO_ROOT/##g" -e "s#$HOME#~#g" >>"$WORK/commands.txt"
    done
done

# profile ENC: strand on the big torrent under perf, with policy ENC.
PERF_OK=0
(( PROFILE )) && perf record -e cpu-clock -o /dev/null true >/dev/null 2>&1 && PERF_OK=1
(( PROFILE == 0 || PERF_OK )) || log "perf record does not work here: no profile (use valgrind --tool=callgrind on a smaller run)"
PROFILE_ARGS=()
profile() {
    local enc=$1
    log "profile ($enc): strand on the big torrent under perf record -e cpu-clock"
    rm -rf "$WORK/out"; mkdir -p "$WORK/out/prof"
    client_cmd strand "$WORK/torrents/big.torrent" "$WORK/out/prof" 127.0.0.1 29999 "$enc"
    drop_caches
    warm_payload big
    run_ns "perf-strand-$enc" perf record -e cpu-clock -F 999 -o "$WORK/perf-$enc.data" -- "${CMD[@]}" \
        || die "strand under perf ($enc) failed"
    cmp "$SEED/bench-big.bin" "$WORK/out/prof/bench-big.bin" || die "profiled download ($enc) differs"
    rm -rf "$WORK/out"
    perf report -i "$WORK/perf-$enc.data" --no-children --sort dso,symbol --stdio 2>/dev/null \
        | grep -E '^ +[0-9.]+%' | head -n 12 >"$WORK/profile-symbols-$enc.txt" || true
    perf report -i "$WORK/perf-$enc.data" --no-children --sort comm --stdio 2>/dev/null \
        | grep -E '^ +[0-9.]+%' | head -n 12 >"$WORK/profile-threads-$enc.txt" || true
    PROFILE_ARGS+=(--profile "$enc=$WORK/profile-symbols-$enc.txt" --profile-threads "$enc=$WORK/profile-threads-$enc.txt")
}

# One half per policy; within it, rounds are interleaved (round 1 of every client, then
# round 2, ...), so that a drift in the machine's state affects every client alike.
for enc in $ENCRYPTIONS; do
    start_swarm "$enc"
    for p in big small; do
        for (( r = 1; r <= ROUNDS; r++ )); do
            for c in $CLIENTS; do
                runs "$c" "$enc" || continue
                bench_one "$p" "$c" "$r" "$enc"
            done
        done
    done
    (( PERF_OK )) && profile "$enc"
    stop_swarm
done

leak_check
T_END=$(date +%s)
log "all downloads matched the payload; bench took $((T_END - T_START))s"
python3 "$BENCH_DIR/report.py" main "$RUNS" "${RESULTS:--}" \
    --mode "$MODE" --small-count "$SMALL_COUNT" --clients "$CLIENTS" --encryptions "$ENCRYPTIONS" \
    --seeders "$NSEEDS" --elapsed "$((T_END - T_START))" \
    --note "$RQBIT_NOTE" --commands "$WORK/commands.txt" --strand "$STRAND" --rqbit "$RQBIT" \
    "${PROFILE_ARGS[@]}"
interop_pass
