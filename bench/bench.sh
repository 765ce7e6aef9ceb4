#!/usr/bin/env bash
# strand benchmark: the same torrents downloaded in turn by strand and other clients from a
# local swarm, inside a network namespace that has only `lo` (needs root).
#
#   bash bench/bench.sh full     # make bench: 1 GiB (1 MiB pieces) + 2,000 small files;
#                                #   strand, aria2c, rqbit, libtorrent; 3 rounds; perf profile;
#                                #   writes the tables into bench/RESULTS.md
#   bash bench/bench.sh smoke    # make bench-smoke: 64 MiB + 200 small files; strand and
#                                #   aria2c; 1 round; fails if a download fails or differs.
#                                #   Never asserts on timings, never touches RESULTS.md.
#
# Swarm (all on 127.0.0.0/8, in the namespace):
#   opentracker        127.0.0.1:6969 (whitelist: the bench torrents)
#   libtorrent seeder  127.0.1.1:6881  (python3-libtorrent, high_performance_seed settings)
#   strand seed        127.0.0.1:7001 / :7002 (one process per torrent; strand announces
#                      without an ip= parameter, so the tracker lists it at 127.0.0.1)
#   transmission       127.0.1.3:51413 (full only; ~3 MB/s on loopback, see INTEROP-NOTES)
#   downloaders        a fresh address/port per run: 127.0.<10+client>.<run>; strand dials from
#                      127.0.0.1 (it has no outgoing-bind option) and listens on a fresh port.
#
# Environment: STRAND (binary), RQBIT (binary; default: ~/.cache/strand-bench/cargo/bin/rqbit),
#   ROUNDS, CLIENTS (space separated), BIG_MIB, SMALL_COUNT, DL_TIMEOUT, PROFILE=0|1,
#   TRANSMISSION=0|1, RESULTS (file to update; full mode only), KEEP_WORK=1.
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
        PROFILE=${PROFILE:-1}; TRANSMISSION=${TRANSMISSION:-1}
        RESULTS=${RESULTS:-$BENCH_DIR/RESULTS.md} ;;
    smoke)
        ROUNDS=${ROUNDS:-1}; CLIENTS=${CLIENTS:-"strand aria2c"}
        BIG_MIB=${BIG_MIB:-64}; SMALL_COUNT=${SMALL_COUNT:-200}
        PROFILE=${PROFILE:-0}; TRANSMISSION=${TRANSMISSION:-0}
        RESULTS=${RESULTS:-} ;;
    *) die "usage: bench.sh full|smoke" ;;
esac
DL_TIMEOUT=${DL_TIMEOUT:-300}

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
printf 'payload\tclient\tround\tbytes\tsecs\tuser\tsys\tmaxrss_kb\n' >"$RUNS"

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

# ------------------------------------------------------------------ tracker
mkdir -p "$WORK/tracker"
printf '%s\n' "${HASH[big]}" "${HASH[small]}" >"$WORK/tracker/whitelist.txt"
chmod 755 "$WORK/tracker"; chmod 644 "$WORK/tracker/whitelist.txt"
start_bg opentracker opentracker -i 127.0.0.1 -p 6969 -P 6969 -d "$WORK/tracker" -w whitelist.txt
WAIT_ALIVE="$PID_opentracker" wait_for 15 "opentracker answers" nsx python3 "$TOOL" scrape "$TRACKER" "${HASH[big]}"

# ------------------------------------------------------------------ seeders
NSEEDS=2
start_bg seed-libtorrent $LTPY "$BENCH_DIR/lt_client.py" seed 127.0.1.1:6881 "$SEED" \
    "$WORK/torrents/big.torrent" "$WORK/torrents/small.torrent"
start_bg seed-strand-big "$STRAND" seed --no-dht "$WORK/torrents/big.torrent" -d "$SEED" --bind 127.0.0.1 --port 7001 -q
start_bg seed-strand-small "$STRAND" seed --no-dht "$WORK/torrents/small.torrent" -d "$SEED" --bind 127.0.0.1 --port 7002 -q
if (( TRANSMISSION )); then
    NSEEDS=3
    TR_CFG=$WORK/transmission; mkdir -p "$TR_CFG"
    cat >"$TR_CFG/settings.json" <<JSON
{ "alt-speed-enabled": false, "bind-address-ipv4": "127.0.1.3", "bind-address-ipv6": "::1",
  "blocklist-enabled": false, "dht-enabled": false, "download-dir": "$SEED", "encryption": 0,
  "idle-seeding-limit-enabled": false, "incomplete-dir-enabled": false, "lpd-enabled": false,
  "message-level": 1, "peer-port": 51413, "peer-port-random-on-start": false, "pex-enabled": false,
  "port-forwarding-enabled": false, "ratio-limit-enabled": false, "rename-partial-files": false,
  "rpc-authentication-required": false, "rpc-bind-address": "127.0.0.1", "rpc-enabled": true,
  "rpc-host-whitelist-enabled": false, "rpc-port": 9091, "rpc-whitelist-enabled": false,
  "speed-limit-down-enabled": false, "speed-limit-up-enabled": false, "start-added-torrents": true,
  "upload-slots-per-torrent": 50, "utp-enabled": false, "watch-dir-enabled": false }
JSON
    start_bg seed-transmission transmission-daemon -f -g "$TR_CFG" --log-error
    WAIT_ALIVE="$PID_seed_transmission" wait_for 20 "transmission RPC" nsx transmission-remote 127.0.0.1:9091 -l
    for p in big small; do
        nsx transmission-remote 127.0.0.1:9091 -a "$WORK/torrents/$p.torrent" -w "$SEED" >/dev/null \
            || die "transmission-remote -a $p failed"
    done
fi
seeds_listed() {
    local p c
    for p in big small; do
        c=$(nsx python3 "$TOOL" scrape "$TRACKER" "${HASH[$p]}" | awk '{print $1}')
        [[ ${c:-0} -ge $NSEEDS ]] || return 1
    done
}
WAIT_ALIVE="$PID_seed_libtorrent $PID_seed_strand_big $PID_seed_strand_small ${PID_seed_transmission:-}" \
    wait_for 240 "tracker lists $NSEEDS seeders for both torrents" seeds_listed

# ------------------------------------------------------------------ one download
drop_caches() { sync; { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null || true; }
RUN_NO=0
CLIENT_NO=0
declare -A CLIENT_IDX=([strand]=1 [aria2c]=2 [rqbit]=3 [libtorrent]=4)

# client_cmd CLIENT TORRENT OUT IP PORT: print nothing, set CMD array
client_cmd() {
    local c=$1 t=$2 out=$3 ip=$4 port=$5
    case $c in
        strand) CMD=("$STRAND" download --no-dht "$t" -o "$out" --bind 127.0.0.1 --port "$port" -q) ;;
        aria2c) CMD=(aria2c --no-conf --enable-dht=false --enable-dht6=false --bt-enable-lpd=false
                    --enable-peer-exchange=false --disable-ipv6=true --interface="$ip"
                    --listen-port="$port" --seed-time=0 --bt-save-metadata=false
                    --file-allocation=none --summary-interval=0 --console-log-level=warn
                    -d "$out" "$t") ;;
        rqbit) CMD=("$RQBIT" --disable-dht --disable-dht-persistence --disable-upnp-port-forward
                    --disable-lsd --listen-ip "$ip" --listen-port "$port" -v warn
                    download --exit-on-finish --disable-http-api -o "$out" "$t") ;;
        libtorrent) CMD=($LTPY "$BENCH_DIR/lt_client.py" download "$ip:$port" "$out" "$t") ;;
        *) die "unknown client $c" ;;
    esac
}

# bench_one PAYLOAD CLIENT ROUND [WRAPPER...]: download, measure, compare, wipe.
bench_one() {
    local p=$1 c=$2 r=$3; shift 3
    RUN_NO=$((RUN_NO + 1))
    local ip="127.0.$((10 + CLIENT_IDX[$c])).$RUN_NO" port=$((20000 + RUN_NO))
    local out=$WORK/out/$c-$p-$r tag=$p-$c-$r tf=$WORK/time/$p-$c-$r.txt
    rm -rf "$WORK/out"; mkdir -p "$out"
    client_cmd "$c" "$WORK/torrents/$p.torrent" "$out" "$ip" "$port"
    drop_caches
    local t0 t1 rc=0
    t0=$(date +%s.%N)
    run_ns "dl-$tag" /usr/bin/time -v -o "$tf" timeout -k 10 "$DL_TIMEOUT" "$@" "${CMD[@]}" || rc=$?
    t1=$(date +%s.%N)
    (( rc == 0 )) || { tail -n 30 "$WORK/logs/dl-$tag.log" >&2; die "$c ($p round $r) exited with $rc"; }
    local src=$SEED/bench-big.bin got=$out/bench-big.bin
    [[ $p == small ]] && { src=$SEED/bench-small; got=$out/bench-small; }
    if [[ $p == big ]]; then
        cmp "$src" "$got" >&2 || die "$c ($p round $r): download differs from the payload"
    else
        diff -rq "$src" "$got" >&2 || die "$c ($p round $r): downloaded files differ from the payload"
    fi
    local secs user sys rss
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')
    user=$(awk -F': ' '/User time/{print $2}' "$tf")
    sys=$(awk -F': ' '/System time/{print $2}' "$tf")
    rss=$(awk -F': ' '/Maximum resident/{print $2}' "$tf")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$p" "$c" "$r" "${SIZE[$p]}" "$secs" "$user" "$sys" "$rss" >>"$RUNS"
    log "RESULT $p $c round $r: ${secs}s $(awk -v b="${SIZE[$p]}" -v s="$secs" 'BEGIN{printf "%.1f MB/s", b/s/1e6}') cpu ${user}+${sys}s rss ${rss} KiB"
    rm -rf "$WORK/out"
}

# The exact command lines, for RESULTS.md (T=torrent, OUT=output dir, IP/PORT per run).
for c in $CLIENTS; do
    client_cmd "$c" T OUT IP PORT
    printf '%s: /usr/bin/time -v timeout %s %s\n' "$c" "$DL_TIMEOUT" "${CMD[*]}" \
        | sed -e "s#$REPO_ROOT/##g" -e "s#$HOME#~#g" >>"$WORK/commands.txt"
done

# Rounds are interleaved (round 1 of every client, then round 2, ...), so that a drift in
# the machine's state affects every client alike.
for p in big small; do
    for (( r = 1; r <= ROUNDS; r++ )); do
        for c in $CLIENTS; do
            bench_one "$p" "$c" "$r"
        done
    done
done

# ------------------------------------------------------------------ profile
PROFILE_TXT=""
if (( PROFILE )); then
    if perf record -e cpu-clock -o /dev/null true >/dev/null 2>&1; then
        log "profile: strand on the big torrent under perf record -e cpu-clock"
        mkdir -p "$WORK/out/prof"
        drop_caches
        run_ns perf-strand perf record -e cpu-clock -F 999 -o "$WORK/perf.data" -- \
            "$STRAND" download --no-dht "$WORK/torrents/big.torrent" -o "$WORK/out/prof" --bind 127.0.0.1 --port 29999 -q \
            || die "strand under perf failed"
        cmp "$SEED/bench-big.bin" "$WORK/out/prof/bench-big.bin" || die "profiled download differs"
        perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null \
            | grep -E '^ +[0-9.]+%' | head -n 12 >"$WORK/profile-symbols.txt" || true
        perf report -i "$WORK/perf.data" --no-children --sort comm --stdio 2>/dev/null \
            | grep -E '^ +[0-9.]+%' | head -n 12 >"$WORK/profile-threads.txt" || true
        PROFILE_TXT=$WORK/profile-symbols.txt
    else
        log "perf record does not work here: no profile (use valgrind --tool=callgrind on a smaller run)"
    fi
fi

leak_check
T_END=$(date +%s)
log "all downloads matched the payload; bench took $((T_END - T_START))s"
python3 "$BENCH_DIR/report.py" main "$RUNS" "${RESULTS:--}" \
    --mode "$MODE" --small-count "$SMALL_COUNT" --clients "$CLIENTS" --seeders "$NSEEDS" --elapsed "$((T_END - T_START))" \
    --note "$RQBIT_NOTE" --commands "$WORK/commands.txt" --strand "$STRAND" --rqbit "$RQBIT" \
    ${PROFILE_TXT:+--profile "$PROFILE_TXT" --profile-threads "$WORK/profile-threads.txt"}
interop_pass
