#!/usr/bin/env bash
# Interop case: `strand create` makes a torrent of a folder; strand's own `strand info`,
# transmission-show and mktorrent all agree on it.
#   - `strand info` reads back what `strand create` wrote: name, piece length, files;
#   - transmission-show accepts the file and computes the same info hash as strand;
#   - mktorrent, given the same folder, piece length and tracker, makes an info dict
#     with the same hash (both write canonical bencode over the same sorted file list);
#   - two runs of `strand create` give byte-identical files.
# No network is used, but the case still runs inside a namespace with only `lo`, as every
# case does.
#
# Environment:
#   STRAND       path to the strand binary (default: target/release/strand)
CASE_NAME=${CASE_NAME:-create_roundtrip}
. "$(dirname "$0")/lib.sh"

STRAND=${STRAND:-$REPO_ROOT/target/release/strand}
ANNOUNCE="http://127.0.0.1:6969/announce"
NAME=strand-create-payload
PAYLOAD_SPEC=(
    "$NAME/a.bin:5000001"
    "$NAME/docs/readme.txt:1000"
    "$NAME/docs/empty.txt:0"
    "$NAME/z/deep/c.bin:3000000"
)

strand_only "this case tests strand create"
require ip mktorrent transmission-show python3 cmp
require_strand

interop_init

SRC=$WORK/src
mkdir -p "$SRC"
make_payload "$SRC" "${PAYLOAD_SPEC[@]}"

run_ns create-1 "$STRAND" create "$SRC/$NAME" -t "$ANNOUNCE" --piece-length 262144 \
    -o "$WORK/one.torrent" -q || die "strand create failed"
run_ns create-2 "$STRAND" create "$SRC/$NAME" -t "$ANNOUNCE" --piece-length 262144 \
    -o "$WORK/two.torrent" -q || die "strand create failed (second run)"
cmp "$WORK/one.torrent" "$WORK/two.torrent" || die "strand create is not deterministic"
log "two runs of strand create: identical ($(stat -c %s "$WORK/one.torrent") bytes)"

run_ns info "$STRAND" info "$WORK/one.torrent" || die "strand info cannot read it"
info=$WORK/logs/info.log
grep -q "^Name: *$NAME\$" "$info" || die "strand info shows another name"
total=0
for spec in "${PAYLOAD_SPEC[@]}"; do total=$(( total + ${spec##*:} )); done
pieces=$(( (total + 262143) / 262144 ))
grep -q "^Pieces: *$pieces × 256.0 KiB\$" "$info" \
    || die "strand info shows other pieces (want $pieces): $(grep ^Pieces "$info")"
for f in a.bin docs/readme.txt docs/empty.txt z/deep/c.bin; do
    grep -qF "$NAME/$f (" "$info" || die "strand info does not list $f"
done
ours=$(awk '/^Info hash:/ {print $3}' "$info")

run_ns transmission-show transmission-show "$WORK/one.torrent" || die "transmission-show refused the torrent"
theirs=$(awk '/^ *Hash:/ {print $2}' "$WORK/logs/transmission-show.log")
[[ $ours == "$theirs" ]] || die "info hash: strand says $ours, transmission-show says $theirs"
grep -q "Created by: strand" "$WORK/logs/transmission-show.log" || die "transmission-show lost 'created by'"
log "transmission-show agrees: info hash $ours"

run_ns mktorrent mktorrent -d -l 18 -a "$ANNOUNCE" -o "$WORK/mk.torrent" "$SRC/$NAME" \
    || die "mktorrent failed"
mk=$(python3 "$TOOL" infohash "$WORK/mk.torrent")
[[ $ours == "$mk" ]] || die "info hash: strand create $ours, mktorrent $mk"
log "mktorrent makes the same info dict: $mk"
log "RESULT: strand create -> strand info, transmission-show and mktorrent agree"
interop_pass
