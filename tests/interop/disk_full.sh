#!/usr/bin/env bash
# Interop case: the disk fills up in the middle of a download, then there is room again.
#
# The output folder is a 32 MiB tmpfs; the torrent is 64 MiB. `strand download` must
# stop on its own (within DISKFULL_LIMIT s, no retry loop), exit non-zero and print
# exactly one line on stderr naming the file and "No space left on device"; the resume
# file DIR/.strand/HASH.resume must exist and be non-empty. Then the tmpfs is grown to
# 128 MiB and the same command run again: it must say what it found on disk (resuming or
# checked), exit 0, and every byte must match. The seeder's bytes sent during the second
# run are compared with what was missing, to show verified pieces are not fetched again.
#
# Needs permission to mount a tmpfs; without it the case prints SKIP and exits 0.
# The tmpfs is mounted in the script's own mount namespace (the clients run under
# `ip netns exec`, which sees it) and unmounted on exit, pass or fail.
#
# Everything strand runs inside a fresh network namespace that has only `lo`:
#   strand tracker  127.0.0.1:$TRACKER_PORT
#   strand seed     127.0.0.1:$SEED_PORT (trace log of the blocks it sends)
#   strand download default port 6881, -o the tmpfs
#
# Environment:
#   STRAND          path to the strand binary (default: target/release/strand)
#   DISKFULL_LIMIT  seconds the first run may take to give up (default 30)
#   DL_TIMEOUT      seconds the second run may take (default 120)
#   KEEP_WORK=1     keep the temp dir (payload, logs) after the run (the tmpfs is unmounted)
CASE_NAME=${CASE_NAME:-disk_full}
. "$(dirname "$0")/lib.sh"

STRAND=${STRAND:-$REPO_ROOT/target/release/strand}
DISKFULL_LIMIT=${DISKFULL_LIMIT:-30}
DL_TIMEOUT=${DL_TIMEOUT:-120}

TRACKER_IP=127.0.0.1
TRACKER_PORT=6969
SEED_PORT=51413
ANNOUNCE="http://$TRACKER_IP:$TRACKER_PORT/announce"
PIECE=262144
NAME=strand-diskfull-payload
# 64 MiB in two files, so the disk fills inside the second one (or the first).
PAYLOAD_SPEC=(
    "$NAME/a.bin:24000001"
    "$NAME/b.bin:43108863"
)

strand_only "this case tests strand's disk-full handling"
require ip python3 cmp timeout awk mount umount mountpoint
require_strand

interop_init

OUT_DIR=$WORK/out
MOUNTED=0
# Stop the clients (one may hold files on the tmpfs), unmount, then the usual cleanup.
disk_full_cleanup() {
    local rc=$? i
    set +e
    for (( i=${#BG_PIDS[@]}-1; i>=0; i-- )); do
        stop_pid "${BG_PIDS[i]}" 5
    done
    if (( MOUNTED )) && mountpoint -q "$OUT_DIR"; then
        if umount "$OUT_DIR"; then
            log "unmounted $OUT_DIR"
        else
            log "umount $OUT_DIR failed; lazy unmount"
            umount -l "$OUT_DIR"
        fi
    fi
    (exit "$rc")
    interop_cleanup
}
trap disk_full_cleanup EXIT

mkdir -p "$OUT_DIR"
if ! err=$(mount -t tmpfs -o size=32m tmpfs "$OUT_DIR" 2>&1); then
    log "SKIP: cannot mount a tmpfs here: ${err:-mount failed}"
    interop_pass
fi
MOUNTED=1
log "mounted a 32 MiB tmpfs on $OUT_DIR: $(df -B1 --output=size,avail "$OUT_DIR" | tail -1)"

setup_payload "64 MiB" "${PAYLOAD_SPEC[@]}"   # OUT_DIR is the tmpfs above
torrent_by_strand_create "$PIECE" "$ANNOUNCE"
TOTAL=$(torrent_bytes "$TORRENT")
PIECES=$(( (TOTAL + PIECE - 1) / PIECE ))
log "$TOTAL bytes, $PIECES pieces of $PIECE"

# run_download NAME LIMIT KILL_AFTER : `strand download $TORRENT -o $OUT_DIR` in the
# namespace, not -q, RUST_LOG unset, under `timeout --kill-after=KILL_AFTER LIMIT`; its
# stderr alone in logs/NAME.stderr, stdout in logs/NAME.stdout. Returns its exit status.
run_download() {
    local name=$1 limit=$2 kill_after=$3 pid rc=0
    # `exec` keeps one PID from bash through `ip netns exec` to timeout.
    env -u RUST_LOG ERR="$WORK/logs/$name.stderr" bash -c 'exec ip netns exec "$0" "$@" 2>"$ERR"' "$NS" \
        timeout --kill-after="$kill_after" "$limit" "$STRAND" download --no-dht "$TORRENT" -o "$OUT_DIR" \
        >"$WORK/logs/$name.stdout" </dev/null &
    pid=$!
    BG_PIDS+=("$pid"); BG_NAMES[$pid]=$name
    wait "$pid" || rc=$?
    return "$rc"
}

start_strand_tracker "$TRACKER_IP" "$TRACKER_PORT" "$INFOHASH"
RUST_LOG=strand::peer::connection=trace start_seeder_strand "$PID_tracker_strand" "$ANNOUNCE"

# Run 1: into the 32 MiB tmpfs.
ERR1=$WORK/logs/dl-full.stderr
log "run 1 into the 32 MiB tmpfs (must give up within ${DISKFULL_LIMIT}s)"
t1=$(date +%s.%N)
rc1=0
run_download dl-full "$DISKFULL_LIMIT" 5 || rc1=$?
secs1=$(elapsed_since "$t1")
log "run 1 exited with $rc1 after ${secs1}s; stderr ($(wc -l <"$ERR1") lines):"
sed 's/^/    | /' "$ERR1" >&2
(( rc1 != 124 && rc1 != 137 )) || die "run 1 did not give up within ${DISKFULL_LIMIT}s (exit $rc1): a retry loop?"
(( rc1 != 0 )) || die "run 1 exited 0 although the disk is too small"
# The checks below that strand can fail on its own are collected, so that run 2 still
# runs and is measured; the case fails at the end if any of them failed.
declare -a PROBLEMS=()
problem() { log "PROBLEM: $*"; PROBLEMS+=("$*"); }
# The line naming the data file; there must be no other line.
ERRLINE=$(grep -F "cannot write $OUT_DIR/$NAME/" "$ERR1" | head -1 || true)
[[ $(wc -l <"$ERR1") -eq 1 ]] || problem "run 1 printed $(wc -l <"$ERR1") lines on stderr, want exactly 1"
[[ -n $ERRLINE ]] || { problem "no stderr line of run 1 says 'cannot write' a file under $OUT_DIR/$NAME/"; ERRLINE=$(tail -1 "$ERR1"); }
[[ $ERRLINE == *"No space left on device"* ]] || problem "run 1's error line does not say 'No space left on device'"
log "tmpfs after run 1: $(df -B1 --output=used,avail "$OUT_DIR" | tail -1) (used, avail bytes)"
RESUME=$OUT_DIR/.strand/$INFOHASH.resume
log "contents of $OUT_DIR/.strand: $(ls -la "$OUT_DIR/.strand" 2>&1 | tail -n +2 | awk '{print $NF" ("$5" bytes)"}' | tr '\n' ' ')"
resume_bytes=none
if [[ ! -f $RESUME ]]; then
    problem "no resume file $RESUME after the disk-full exit"
elif [[ ! -s $RESUME ]]; then
    problem "the resume file $RESUME is empty"
else
    resume_bytes="$(stat -c %s "$RESUME") bytes"
fi
read -r good1 good1_bytes < <(good_pieces "$OUT_DIR")
log "after run 1: resume file: $resume_bytes; $good1/$PIECES pieces on disk hash right ($good1_bytes bytes)"

# Run 2: room again.
mount -o remount,size=128m "$OUT_DIR" || die "cannot grow the tmpfs to 128 MiB"
log "grew the tmpfs: $(df -B1 --output=size,avail "$OUT_DIR" | tail -1) (size, avail bytes)"
mark=$(wc -l <"$WORK/logs/seeder-strand.log")
ERR2=$WORK/logs/dl-again.stderr
t2=$(date +%s.%N)
rc2=0
run_download dl-again "$DL_TIMEOUT" 10 || rc2=$?
secs2=$(elapsed_since "$t2")
log "run 2 exited with $rc2 after ${secs2}s; stderr:"
tr '\r' '\n' <"$ERR2" | grep -v '^$' | sed 's/^/    | /' >&2
(( rc2 == 0 )) || die "run 2 (with room) exited with status $rc2"
START2=$(grep -E '^(resuming:|checked the data on disk)' "$ERR2" | head -1 || true)
[[ -n $START2 ]] || die "run 2 did not report resuming or checking the data on disk"
compare_tree "$TORRENT" "$SEED_DIR" "$OUT_DIR" || die "downloaded files differ from the payload"
sent2=$(seeder_sent_bytes "$WORK/logs/seeder-strand.log" "$mark")
sent1=$(( $(seeder_sent_bytes "$WORK/logs/seeder-strand.log") - sent2 ))

stop_by_sigint "$PID_seeder_strand" 20 || true
summary=$(grep -E 'uploaded [0-9.]+ [KMGT]?i?B' "$WORK/logs/seeder-strand.log" | tail -1 || true)
leak_check

missing=$(( TOTAL - good1_bytes ))
log "RESULT: disk_full: 64 MiB torrent into a 32 MiB tmpfs"
log "RESULT:   run 1: exit $rc1 after ${secs1}s, $(wc -l <"$ERR1") stderr line(s); the error line: $ERRLINE"
log "RESULT:   resume file: $resume_bytes; on disk after run 1: $good1/$PIECES pieces good ($good1_bytes bytes)"
log "RESULT:   run 2 (128 MiB): exit 0 after ${secs2}s, files identical; strand said: $START2"
log "RESULT:   seeder sent $sent1 bytes in run 1 and $sent2 bytes in run 2; missing before run 2: $missing bytes (extra $(( sent2 - missing )))"
log "RESULT:   seeder summary: ${summary:-none}"
(( sent2 < TOTAL )) || log "WARNING: run 2 fetched the whole torrent again"
if (( ${#PROBLEMS[@]} )); then
    for p in "${PROBLEMS[@]}"; do log "RESULT:   PROBLEM: $p"; done
    die "${#PROBLEMS[@]} check(s) of run 1 failed (see PROBLEM lines); run 2 recovered"
fi
interop_pass
