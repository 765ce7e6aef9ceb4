#!/usr/bin/env bash
# Interop case: libtorrent 2.0 (python3-libtorrent) makes a hybrid v1 + v2 torrent of a
# multi-file folder with its default pad files (`lt.create_torrent(fs, 32768)`) and seeds
# it; strand downloads it as v1 (issue 15). Every file must be byte-identical and no `.pad`
# folder may appear on disk.
#
# Everything runs inside a fresh network namespace that has only `lo`:
#   libtorrent seed   127.0.1.5:$SEED_PORT
#   strand download   127.0.2.5:$LEECH_PORT, given the seeder with --peer (no tracker)
CASE_NAME=${CASE_NAME:-hybrid_from_libtorrent}
. "$(dirname "$0")/lib.sh"

STRAND=${STRAND:-$REPO_ROOT/target/release/strand}
DL_TIMEOUT=${DL_TIMEOUT:-120}
LT_PYTHON=${LT_PYTHON:-/usr/bin/python3}
SEED_IP=127.0.1.5
SEED_PORT=6885
LEECH_IP=127.0.2.5
LEECH_PORT=6895
NAME=hybrid-payload

# Sizes that are not multiples of 32 KiB, so libtorrent pads after every file.
PAYLOAD_SPEC=(
    "$NAME/a.bin:1000003"
    "$NAME/docs/readme.txt:1000"
    "$NAME/docs/nested/c.bin:2000001"
    "$NAME/d.bin:70000"
)

require ip python3 cmp timeout
require_strand 'strand download' "has no 'download' subcommand"
require_libtorrent

interop_init
setup_payload "3 MiB" "${PAYLOAD_SPEC[@]}"

start_bg seed-libtorrent "$LT_PYTHON" "$INTEROP_DIR/lt_hybrid_seed.py" \
    "$SEED_DIR/$NAME" "$TORRENT" "$SEED_IP" "$SEED_PORT"
WAIT_ALIVE="$PID_seed_libtorrent" wait_for 60 "libtorrent seeds the hybrid torrent" \
    grep -q SEEDING "$WORK/logs/seed-libtorrent.log"

"$STRAND" info "$TORRENT" >"$WORK/logs/info.txt" 2>&1 || die "strand info failed: $(cat "$WORK/logs/info.txt")"
grep -q 'Version:      hybrid (v1 + v2)' "$WORK/logs/info.txt" || die "info: $(cat "$WORK/logs/info.txt")"
grep -q 'pad file' "$WORK/logs/info.txt" || die "no pad files in libtorrent's torrent: $(cat "$WORK/logs/info.txt")"
log "strand info: $(grep -E 'Version|Files' "$WORK/logs/info.txt" | tr '\n' ' ')"

DL_LOG=$WORK/logs/downloader-strand.log
DL_START=$(date +%s.%N)
RUST_LOG=${RUST_LOG:-info} start_bg downloader-strand timeout --kill-after=10 "$DL_TIMEOUT" \
    "$STRAND" download "$TORRENT" -o "$OUT_DIR" -q --bind "$LEECH_IP" --port "$LEECH_PORT" \
    --peer "$SEED_IP:$SEED_PORT" --tracker-timeout 30 --no-dht
DL_PID=$PID_downloader_strand
wait_strand_download

# The payload's files, not the torrent's list: that one names the pad files too.
for spec in "${PAYLOAD_SPEC[@]}"; do
    path=${spec%%:*}
    cmp "$SEED_DIR/$path" "$OUT_DIR/$path" || die "$path differs from the payload"
    log "  same    $path"
done
[[ ! -e $OUT_DIR/$NAME/.pad ]] || die "strand created $NAME/.pad: $(ls "$OUT_DIR/$NAME/.pad" | head)"
log "byte-identical, no .pad folder, ${DL_SECS}s"
interop_pass
