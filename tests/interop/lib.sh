# shellcheck shell=bash
# Shared functions for the interop cases. Source it from a case script:
#
#   . "$(dirname "$0")/lib.sh"
#   interop_init            # temp dir, namespace with only lo, EXIT trap
#   start_bg NAME CMD...    # start CMD inside the namespace, log to $WORK/logs/NAME.log
#   wait_for SECONDS "what" CMD...
#   ...
#   interop_pass / die "why"
#
# Rules kept here so every case follows them:
#  - every third-party client (and strand) runs inside a fresh network namespace
#    that has only `lo`, named strand-interop-<pid>; only 127.0.0.0/8 is used;
#  - every background process is recorded by PID and stopped by that PID;
#  - every wait has a deadline;
#  - on exit (pass, fail or signal) the processes are stopped, the namespace is
#    deleted and the temp dir removed (set KEEP_WORK=1 to keep the temp dir);
#  - on failure the logs of every client are printed.

set -euo pipefail
# Belt and braces beside --no-dht: a strand started from here refuses every DHT name and
# every non-loopback DHT address (the public routers are for users only).
export STRAND_DHT_LOOPBACK_ONLY=1
# The libtorrent scripts import lt_common.py: no __pycache__ folders in the source tree.
export PYTHONDONTWRITEBYTECODE=1

INTEROP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$INTEROP_DIR/../.." && pwd)
TOOL="$INTEROP_DIR/torrent_tool.py"
CASE_NAME=${CASE_NAME:-$(basename "$0" .sh)}

NS=""
WORK=""
declare -a BG_PIDS=()
declare -A BG_NAMES=()
INTEROP_OK=0
T0=$(date +%s)

log() {
    printf '[%s %s +%ss] %s\n' "$(date +%H:%M:%S)" "$CASE_NAME" "$(( $(date +%s) - T0 ))" "$*" >&2
}

die() {
    log "FAIL: $*"
    exit 1
}

# Run a command inside the namespace (foreground).
nsx() {
    ip netns exec "$NS" "$@"
}

interop_init() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (network namespaces)"
    command -v ip >/dev/null || die "ip (iproute2) is missing"
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/strand-interop.XXXXXX")
    mkdir -p "$WORK/logs"
    trap interop_cleanup EXIT
    trap 'log "interrupted"; exit 130' INT TERM HUP
    NS="strand-interop-$$"
    log "work dir $WORK, namespace $NS"
    ip netns add "$NS" || die "ip netns add $NS failed"
    nsx ip link set lo up
    # Only lo may exist in the namespace.
    local links
    links=$(nsx ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')
    [[ $links == "lo " ]] || die "namespace has unexpected links: $links"
}

# start_bg NAME CMD... : start CMD inside the namespace in the background.
# `ip netns exec` execs the command (no fork), so $! is the client's own PID.
start_bg() {
    local name=$1; shift
    local logf="$WORK/logs/$name.log"
    log "start $name: $*"
    ip netns exec "$NS" "$@" >"$logf" 2>&1 </dev/null &
    local pid=$!
    BG_PIDS+=("$pid")
    BG_NAMES[$pid]=$name
    eval "PID_${name//[^A-Za-z0-9_]/_}=$pid"
}

# run_ns NAME CMD... : run CMD inside the namespace and wait for it; returns its
# exit status. Started in the background and waited for (rather than run in the
# foreground) so that a SIGTERM/SIGINT to the case script is handled at once and
# the cleanup stops CMD by its PID.
run_ns() {
    local name=$1; shift
    start_bg "$name" "$@"
    local pid=$! rc=0
    wait "$pid" || rc=$?
    return "$rc"
}

# pid_of NAME : print the PID recorded for NAME.
pid_of() {
    local v="PID_${1//[^A-Za-z0-9_]/_}"
    printf '%s\n' "${!v:-}"
}

is_running() {
    kill -0 "$1" 2>/dev/null
}

# stop_pid PID [GRACE_SECONDS] : SIGTERM, wait up to GRACE seconds, then SIGKILL.
stop_pid() {
    local pid=$1 grace=${2:-10} deadline
    is_running "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
    log "stop ${BG_NAMES[$pid]:-pid} (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$(( $(date +%s) + grace ))
    while is_running "$pid" && (( $(date +%s) < deadline )); do
        sleep 0.2
    done
    if is_running "$pid"; then
        log "pid $pid ignored SIGTERM for ${grace}s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# stop_name NAME : stop the process started as NAME.
stop_name() {
    local pid
    pid=$(pid_of "$1")
    [[ -n $pid ]] && stop_pid "$pid"
}

# wait_for SECONDS DESCRIPTION CMD... : poll CMD (every 0.5 s) until it succeeds
# or the deadline passes; dies on timeout. Also dies early if a process listed in
# WAIT_ALIVE (PIDs, space separated) has exited.
wait_for() {
    local secs=$1 desc=$2; shift 2
    local deadline=$(( $(date +%s) + secs )) p
    log "wait (<= ${secs}s): $desc"
    while true; do
        if "$@" >/dev/null 2>&1; then
            log "ok: $desc"
            return 0
        fi
        for p in ${WAIT_ALIVE:-}; do
            is_running "$p" || die "${BG_NAMES[$p]:-pid $p} exited while waiting for: $desc"
        done
        (( $(date +%s) < deadline )) || die "timed out after ${secs}s waiting for: $desc"
        sleep 0.5
    done
}

dump_logs() {
    local f
    [[ -n $WORK && -d $WORK/logs ]] || return 0
    for f in "$WORK"/logs/*; do
        [[ -f $f ]] || continue
        printf '\n===== %s (last 80 lines of %s) =====\n' "$(basename "$f")" "$(wc -l <"$f") lines" >&2
        tail -n 80 "$f" >&2 || true
    done
    printf '===== end of logs =====\n\n' >&2
}

interop_cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM HUP
    set +e
    (( rc != 0 || INTEROP_OK == 1 )) || rc=1
    # Stop what we started, newest first. Before dumping the logs: transmission
    # buffers its log output and writes it out only when it exits.
    for (( i=${#BG_PIDS[@]}-1; i>=0; i-- )); do
        stop_pid "${BG_PIDS[i]}" 5
    done
    (( rc == 0 )) || dump_logs
    if [[ -n $NS ]] && ip netns list | grep -qw "$NS"; then
        # Anything still in our private namespace was started by this run
        # (e.g. a child of a client): stop it by its PID before deleting.
        for pid in $(ip netns pids "$NS" 2>/dev/null); do
            log "leftover pid $pid in $NS ($(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null)), killing"
            kill -KILL "$pid" 2>/dev/null
        done
        ip netns del "$NS" && log "deleted namespace $NS"
    fi
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ ${KEEP_WORK:-0} == 1 ]]; then
            log "kept work dir $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
    log "$( (( rc == 0 )) && echo PASS || echo FAIL ) in $(( $(date +%s) - T0 ))s"
    exit "$rc"
}

interop_pass() {
    INTEROP_OK=1
    exit 0
}

# require CMD... : die if any command is missing (run install-deps.sh first).
require() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null || die "$c not found: run tests/interop/install-deps.sh"
    done
}

# strand_only WHY : for the cases that test strand itself: with another DOWNLOADER, log
# "SKIP: WHY" and exit 0. Call it before interop_init (there is nothing to clean up yet).
strand_only() {
    if [[ ${DOWNLOADER:-strand} != strand ]]; then
        log "SKIP: $1 (DOWNLOADER=$DOWNLOADER)"
        exit 0
    fi
}

# require_strand [HELP_TEXT PROBLEM] : die unless $STRAND is an executable; with HELP_TEXT,
# also die ("$STRAND PROBLEM") unless `strand --help` mentions HELP_TEXT.
require_strand() {
    [[ -x $STRAND ]] || die "strand binary not found at $STRAND (run: make build, or set STRAND=)"
    if [[ -n ${1:-} ]]; then
        "$STRAND" --help 2>&1 | grep -q "$1" || die "$STRAND $2 (strand --help)"
    fi
}

# make_payload DIR SPEC... : deterministic content, see torrent_tool.py.
make_payload() {
    python3 "$TOOL" payload "$@"
}

# setup_payload SIZE SPEC... : the payload and the folders of a case. Writes SPEC (entries
# "$NAME/PATH:BYTES", see torrent_tool.py) into a new $WORK/seed and makes an empty
# $WORK/out for the downloader; SIZE (e.g. "64 MiB") only labels the log line.
# Sets SEED_DIR, OUT_DIR and TORRENT ($WORK/payload.torrent, written by torrent_by_*).
setup_payload() {
    local size=$1; shift
    SEED_DIR=$WORK/seed
    OUT_DIR=$WORK/out
    TORRENT=$WORK/payload.torrent
    mkdir -p "$SEED_DIR" "$OUT_DIR"
    log "generating payload ($# file$( (( $# == 1 )) || echo s), $size)"
    make_payload "$SEED_DIR" "$@"
}

# torrent_by_mktorrent PIECE_EXP TIER... : write $TORRENT for the payload folder
# $SEED_DIR/$NAME with mktorrent: pieces of 2^PIECE_EXP bytes, one -a per TIER (the URLs
# of one tier comma-separated), -d (no creation date: the same bytes every run); output
# in logs/mktorrent.log, dies if it fails. Sets INFOHASH (hex) and logs it.
torrent_by_mktorrent() {
    local exp=$1 tier; shift
    local -a tiers=()
    for tier in "$@"; do tiers+=(-a "$tier"); done
    log "mktorrent (piece 2^$exp)"
    mktorrent -d -l "$exp" "${tiers[@]}" -o "$TORRENT" "$SEED_DIR/$NAME" >"$WORK/logs/mktorrent.log" 2>&1 \
        || die "mktorrent failed"
    INFOHASH=$(python3 "$TOOL" infohash "$TORRENT")
    log "info hash $INFOHASH, tracker tiers: $*"
}

# torrent_by_strand_create PIECE_LENGTH ANNOUNCE : the same with `strand create` ($STRAND):
# pieces of PIECE_LENGTH bytes, the one tracker ANNOUNCE; output in logs/create.log, dies
# if it fails. Sets INFOHASH (hex) and logs it.
torrent_by_strand_create() {
    local piece=$1 announce=$2
    log "strand create (piece $piece)"
    "$STRAND" create "$SEED_DIR/$NAME" -t "$announce" --piece-length "$piece" -o "$TORRENT" \
        >"$WORK/logs/create.log" 2>&1 || die "strand create failed"
    INFOHASH=$(python3 "$TOOL" infohash "$TORRENT")
    log "info hash $INFOHASH, tracker $announce"
}

# torrent_bytes TORRENT : print the total size of the files TORRENT lists.
torrent_bytes() {
    python3 "$TOOL" files "$1" | awk -F'\t' '{s += $1} END {print s}'
}

# good_pieces DIR : print "GOOD BYTES" for the pieces of $TORRENT on disk under DIR that
# hash right (torrent_tool.py goodpieces, independent of strand).
good_pieces() {
    python3 "$TOOL" goodpieces "$TORRENT" "$1"
}

# compare_tree TORRENT SRC_DIR OUT_DIR [skip-empty] : cmp every file the torrent
# lists. Returns non-zero (after logging each problem) if any differs or is missing.
compare_tree() {
    local torrent=$1 src=$2 out=$3 skip_empty=${4:-}
    local len path bad=0 n=0
    while IFS=$'\t' read -r len path; do
        if [[ $len == 0 && $skip_empty == skip-empty && ! -e $out/$path ]]; then
            log "  (empty file $path not created: allowed for this downloader)"
            continue
        fi
        n=$((n + 1))
        if [[ ! -f $out/$path ]]; then
            log "  MISSING $path"
            bad=1
        elif ! cmp -s "$src/$path" "$out/$path"; then
            log "  DIFFERS $path ($(stat -c %s "$out/$path") bytes, want $len): $(cmp "$src/$path" "$out/$path" 2>&1 | head -1)"
            bad=1
        else
            log "  same    $path ($len bytes)"
        fi
    done < <(python3 "$TOOL" files "$torrent")
    (( n > 0 )) || { log "  torrent lists no files?"; return 1; }
    return "$bad"
}

# leak_check : log packets that tried to leave the namespace (no route).
leak_check() {
    local out
    out=$(nsx nstat -az IpOutNoRoutes Ip6OutNoRoutes 2>/dev/null | awk 'NR>1 && $1 !~ /^#/ {printf "%s=%s ", $1, $2}')
    log "namespace no-route counters: ${out:-unavailable}"
}

# start_opentracker IP PORT INFOHASH : opentracker serving HTTP and UDP on IP:PORT,
# whitelisting only INFOHASH (it is built whitelist-only). It chroots into -d DIR
# and drops to user nobody, so the whitelist path is relative to DIR and must be
# world-readable. Recorded as "opentracker"; waits (bounded) until it answers.
start_opentracker() {
    local ip=$1 port=$2 infohash=$3 dir=$WORK/tracker
    mkdir -p "$dir"
    echo "$infohash" >"$dir/whitelist.txt"
    chmod 755 "$dir"
    chmod 644 "$dir/whitelist.txt"
    start_bg opentracker opentracker -i "$ip" -p "$port" -P "$port" -d "$dir" -w whitelist.txt
    WAIT_ALIVE="$PID_opentracker" wait_for 15 "opentracker answers scrape" \
        nsx python3 "$TOOL" scrape "http://$ip:$port/announce" "$infohash"
}

# tracker_counts HTTP_ANNOUNCE INFOHASH : print "complete incomplete downloaded".
tracker_counts() {
    nsx python3 "$TOOL" scrape "$1" "$2"
}

# tracker_lists_seeder HTTP_ANNOUNCE INFOHASH : true once the tracker counts a seeder.
tracker_lists_seeder() {
    local complete
    complete=$(tracker_counts "$1" "$2" | awk '{print $1}')
    [[ ${complete:-0} -ge 1 ]]
}

# tracker_lists_leecher HTTP_ANNOUNCE INFOHASH : true once the tracker counts a leecher.
tracker_lists_leecher() {
    local incomplete
    incomplete=$(tracker_counts "$1" "$2" | awk '{print $2}')
    [[ ${incomplete:-0} -ge 1 ]]
}

# start_strand_tracker IP PORT INFOHASH : `strand tracker` (HTTP, no whitelist) on IP:PORT,
# recorded as "tracker-strand"; waits (bounded) until it answers a scrape for INFOHASH.
start_strand_tracker() {
    local ip=$1 port=$2 infohash=$3
    start_bg tracker-strand "$STRAND" tracker --bind "$ip" --port "$port"
    WAIT_ALIVE="$PID_tracker_strand" wait_for 15 "strand tracker answers scrape" \
        nsx python3 "$TOOL" scrape "http://$ip:$port/announce" "$infohash"
}

# start_seeder_strand TRACKER_PID HTTP_ANNOUNCE [ARG...] : the seeder of the cases that
# test strand's downloader against strand: `strand seed $TORRENT -d $SEED_DIR --bind
# 127.0.0.1 --port $SEED_PORT ARG...` (RUST_LOG default info), recorded as "seeder-strand".
# Waits (<= 60 s; dies if the seeder or TRACKER_PID exits) until the tracker lists a seeder
# (a scrape of HTTP_ANNOUNCE for $INFOHASH).
start_seeder_strand() {
    local tracker_pid=$1 announce=$2; shift 2
    RUST_LOG=${RUST_LOG:-info} start_bg seeder-strand "$STRAND" seed --no-dht "$TORRENT" -d "$SEED_DIR" \
        --bind 127.0.0.1 --port "$SEED_PORT" "$@"
    WAIT_ALIVE="$PID_seeder_strand $tracker_pid" wait_for 60 "tracker lists the seeder" \
        tracker_lists_seeder "$announce" "$INFOHASH"
}

# start_strand_download : `strand download $TORRENT -o $OUT_DIR -q` in the background under
# `timeout $DL_TIMEOUT` (RUST_LOG default info), recorded as "downloader-strand". Sets
# DL_LOG (its log file), DL_PID and DL_START (`date +%s.%N`).
# wait_strand_download : wait for it; sets DL_RC and DL_SECS (since DL_START), logs them,
# and dies unless it exited 0.
start_strand_download() {
    DL_LOG=$WORK/logs/downloader-strand.log
    DL_START=$(date +%s.%N)
    RUST_LOG=${RUST_LOG:-info} start_bg downloader-strand timeout --kill-after=10 "$DL_TIMEOUT" \
        "$STRAND" download --no-dht "$TORRENT" -o "$OUT_DIR" -q
    DL_PID=$PID_downloader_strand
}
wait_strand_download() {
    DL_RC=0
    wait "$DL_PID" || DL_RC=$?
    DL_SECS=$(elapsed_since "$DL_START")
    log "downloader exited with $DL_RC after ${DL_SECS}s"
    (( DL_RC == 0 )) || die "strand download exited with status $DL_RC"
}

# announce_replied LOG URL : true once the strand log LOG shows a successful announce to
# the tracker URL (its line "tracker URL: N peers after S s").
announce_replied() {
    # grep without -q reads to the end, so the first grep never dies of SIGPIPE (pipefail).
    grep -F "tracker $2:" "$1" 2>/dev/null | grep "peers after" >/dev/null
}

# stop_by_sigint PID SECONDS : SIGINT to PID (strand then prints its summary), wait up to
# SECONDS for it to exit, die if it has not. Returns PID's exit status.
stop_by_sigint() {
    local pid=$1 secs=$2 deadline rc=0
    kill -INT "$pid" 2>/dev/null || true
    deadline=$(( $(date +%s) + secs ))
    while is_running "$pid" && (( $(date +%s) < deadline )); do sleep 0.1; done
    is_running "$pid" && die "${BG_NAMES[$pid]:-pid $pid} did not exit within $secs s of SIGINT"
    wait "$pid" 2>/dev/null || rc=$?
    return "$rc"
}

# seeder_sent_bytes LOG [FROM_LINE] : bytes of the blocks a strand seeder handed to its
# sockets, summed from its trace log LOG (RUST_LOG=strand::peer::connection=trace: one
# "-> piece piece=... len=N" line per block), counting only the lines after FROM_LINE.
seeder_sent_bytes() {
    tail -n +"$(( ${2:-0} + 1 ))" "$1" | grep -F -- '-> piece piece=' \
        | sed -nE 's/.*len=([0-9]+).*/\1/p' | awk '{s += $1} END {print s + 0}'
}

# elapsed_since START : seconds (one decimal) since START (a `date +%s.%N` value).
elapsed_since() {
    awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'
}

# require_libtorrent : die unless $LT_PYTHON imports libtorrent (python3-libtorrent).
require_libtorrent() {
    "$LT_PYTHON" -c 'import libtorrent' 2>/dev/null \
        || die "$LT_PYTHON cannot import libtorrent: run tests/interop/install-deps.sh (python3-libtorrent)"
}

# dht_case_init NAME : the set-up the loopback DHT cases (dht_*_libtorrent.sh) share:
# STRAND, DL_TIMEOUT (default 180) and LT_PYTHON; the namespace; an 8 MiB payload of two
# files in the folder NAME; its torrent (mktorrent, 256 KiB pieces, an announce URL where
# nothing listens, so only the DHT can find a peer); MAGNET, `magnet:?xt=urn:btih:HASH`
# alone; and $WORK/state, strand's XDG_STATE_HOME (its dht.dat).
dht_case_init() {
    NAME=$1
    STRAND=${STRAND:-$REPO_ROOT/target/release/strand}
    DL_TIMEOUT=${DL_TIMEOUT:-180}
    LT_PYTHON=${LT_PYTHON:-/usr/bin/python3}
    require ip mktorrent python3 cmp timeout
    require_libtorrent
    interop_init
    setup_payload "8 MiB" "$NAME/a.bin:5000001" "$NAME/b/c.bin:3388607"
    torrent_by_mktorrent 18 "http://127.0.0.1:9/announce"
    MAGNET="magnet:?xt=urn:btih:$INFOHASH"
    mkdir -p "$WORK/state"
}

# dht_case_check STRAND_LOG : the end the loopback DHT cases share: strand never tried to
# leave loopback (no STRAND_DHT_LOOPBACK_ONLY refusal in STRAND_LOG), the downloaded files
# match the payload, and the namespace's no-route counters are logged.
dht_case_check() {
    ! grep -q 'loopback-only' "$1" || die "strand tried to leave loopback"
    compare_tree "$TORRENT" "$SEED_DIR" "$OUT_DIR" || die "downloaded files differ from the payload"
    leak_check
}
