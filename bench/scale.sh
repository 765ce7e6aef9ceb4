#!/usr/bin/env bash
# make bench-scale: strand downloads from 300 peers at once (needs root: network namespace).
#
# bench/seeder (a separate std-only Cargo package) listens on 300 ports of 127.0.0.1 inside
# a namespace that has only `lo`; each port is a peer holding a subset of the pieces of a
# generated payload. strand gets the peers as 300 `--peer 127.0.0.1:PORT` arguments (no
# tracker: the torrent's announce URL points at a closed port). Measured: wall time, peak
# RSS and CPU (/usr/bin/time -v), strand's thread count and its established peer
# connections (sampled every SAMPLE=0.5 s). Results go into bench/RESULTS.md (section "scale").
#
# Environment: STRAND, PEERS (300), SCALE_MIB (1024), SHARE (percent of pieces per peer, 40),
#   RATE_KIB (per-connection pace of the seeder, 512),
#   DL_TIMEOUT (300), RESULTS (file to update; "-" to print only), KEEP_WORK=1.
CASE_NAME=bench-scale
. "$(dirname "$0")/../tests/interop/lib.sh"
BENCH_DIR=$REPO_ROOT/bench
STRAND=${STRAND:-$REPO_ROOT/target/release/strand}
SEEDER=${SEEDER:-$BENCH_DIR/seeder/target/release/strand-bench-seeder}
PEERS=${PEERS:-300}
SCALE_MIB=${SCALE_MIB:-1024}
SHARE=${SHARE:-40}
# Each peer connection is paced to RATE_KIB KiB/s, so that the download lasts long enough for
# strand to be connected to all peers at once (unpaced, 1 GiB from the page cache takes ~2 s).
RATE_KIB=${RATE_KIB:-512}
PIECE_LEN=262144
DL_TIMEOUT=${DL_TIMEOUT:-300}
RESULTS=${RESULTS:-$BENCH_DIR/RESULTS.md}
PORT0=30000
SAMPLE=${SAMPLE:-0.5}   # seconds between samples of threads and connections

require ip mktorrent python3 cmp timeout /usr/bin/time ss
[[ -x $STRAND ]] || die "strand binary not found at $STRAND (make build)"
[[ -x $SEEDER ]] || die "seeder not built: cargo build --release --manifest-path bench/seeder/Cargo.toml"
ulimit -n 8192

interop_init
SEED=$WORK/seed OUT=$WORK/out
mkdir -p "$SEED" "$OUT"
log "generating a $SCALE_MIB MiB payload"
python3 "$BENCH_DIR/payload.py" big "$SEED" bench-scale.bin "$SCALE_MIB"
mktorrent -d -l 18 -a "http://127.0.0.1:9/announce" -o "$WORK/scale.torrent" "$SEED/bench-scale.bin" >/dev/null \
    || die "mktorrent failed"
HASH=$(python3 "$TOOL" infohash "$WORK/scale.torrent")
BYTES=$(stat -c %s "$SEED/bench-scale.bin")

start_bg seeder "$SEEDER" --file "$SEED/bench-scale.bin" --info-hash "$HASH" --piece-length $PIECE_LEN \
    --ip 127.0.0.1 --port $PORT0 --count "$PEERS" --share "$SHARE" --rate-kib "$RATE_KIB"
WAIT_ALIVE="$PID_seeder" wait_for 20 "seeder listens on $PEERS ports" grep -q '^ready' "$WORK/logs/seeder.log"
cat "$SEED/bench-scale.bin" >/dev/null   # the seeder serves from the page cache

PEER_ARGS=()
for (( k = 0; k < PEERS; k++ )); do PEER_ARGS+=(--peer "127.0.0.1:$((PORT0 + k))"); done
CMD=("$STRAND" download --no-dht "$WORK/scale.torrent" -o "$OUT" --bind 127.0.0.1 --port 6881
     --max-peers $((PEERS + 50)) "${PEER_ARGS[@]}")

t0=$(date +%s.%N)
start_bg strand /usr/bin/time -v -o "$WORK/time.txt" timeout -k 10 "$DL_TIMEOUT" "${CMD[@]}"
TPID=$PID_strand
# strand is time -> timeout -> strand: follow the first child twice.
child() { awk '{print $1}' "/proc/$1/task/$1/children" 2>/dev/null; }
SPID=""
deadline=$(( $(date +%s) + 10 ))
while [[ -z $SPID ]] && is_running "$TPID" && (( $(date +%s) < deadline )); do
    c1=$(child "$TPID"); [[ -n $c1 ]] && SPID=$(child "$c1")
    [[ -n $SPID ]] || sleep 0.05
done
log "strand pid ${SPID:-?}"
max_threads=0 max_conns=0
deadline=$(( $(date +%s) + DL_TIMEOUT + 20 ))
while is_running "$TPID" && (( $(date +%s) < deadline )); do
    if [[ -n $SPID ]]; then
        th=$(awk '/^Threads:/{print $2}' "/proc/$SPID/status" 2>/dev/null || echo 0)
        (( ${th:-0} > max_threads )) && max_threads=$th
    fi
    conns=$(nsx ss -Htn state established "( sport >= :$PORT0 and sport < :$((PORT0 + PEERS)) )" 2>/dev/null | wc -l)
    (( conns > max_conns )) && max_conns=$conns
    sleep "$SAMPLE"
done
rc=0
wait "$TPID" || rc=$?
t1=$(date +%s.%N)
(( rc == 0 )) || die "strand exited with $rc"
cmp "$SEED/bench-scale.bin" "$OUT/bench-scale.bin" || die "download differs from the payload"
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')
# the seeder's own CPU (it shares the machine with strand)
seeder_cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$PID_seeder/stat" 2>/dev/null || echo "?")
user=$(awk -F': ' '/User time/{print $2}' "$WORK/time.txt")
sys=$(awk -F': ' '/System time/{print $2}' "$WORK/time.txt")
rss=$(awk -F': ' '/Maximum resident/{print $2}' "$WORK/time.txt")
log "RESULT: $SCALE_MIB MiB from $PEERS peers in ${secs}s, rss ${rss} KiB, max threads $max_threads, max peer connections $max_conns, cpu ${user}+${sys}s"
leak_check
{
    printf 'mib\t%s\npieces\t%s\npeers\t%s\nbytes\t%s\nsecs\t%s\nuser\t%s\nsys\t%s\nmaxrss_kb\t%s\n' \
        "$SCALE_MIB" "$(( (BYTES + PIECE_LEN - 1) / PIECE_LEN ))" "$PEERS" "$BYTES" "$secs" "$user" "$sys" "$rss"
    printf 'max_threads\t%s\npeers_seen\t%s\nsample\t%s\nrate_kib\t%s\nseeder_cpu\t%s\n' "$max_threads" "$max_conns" "$SAMPLE" "$RATE_KIB" "$seeder_cpu"
    printf 'command\tstrand download --no-dht scale.torrent -o OUT --bind 127.0.0.1 --port 6881 --max-peers %s --peer 127.0.0.1:%s ... --peer 127.0.0.1:%s\n' \
        "$((PEERS + 50))" "$PORT0" "$((PORT0 + PEERS - 1))"
} >"$WORK/scale.tsv"
python3 "$BENCH_DIR/report.py" scale "$WORK/scale.tsv" "$RESULTS"
interop_pass
