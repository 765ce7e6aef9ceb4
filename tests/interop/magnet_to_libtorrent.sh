#!/usr/bin/env bash
# Interop case: strand ALONE seeds a 32 MiB multi-file torrent (`strand seed`)
# through a whitelist-only opentracker; libtorrent-rasterbar 2.0 (Debian's python3
# binding) is given only the magnet link and must fetch the info dictionary from
# strand over ut_metadata (BEP 9/10), then the files. Every file is compared byte
# for byte with the original.
#
# The libtorrent session uses the DEFAULT flags (default plugins, ut_metadata
# among them): `lt.session(settings, 0)`, as libtorrent_downloads.sh uses, loads
# none, and a magnet link could never get its metadata.
#
# The magnet link is `transmission-show -m`'s (xt, dn, tr) plus, unless
# LT_DIRECT=0, `x.pe=` strand's address. Strand announces from 127.0.0.1 (the
# kernel's source address), not from its --bind address, so the tracker lists it
# where nothing listens (see libtorrent_downloads.sh); with LT_DIRECT=0 the case
# is expected to fail for that reason.
#
# Timings logged (not checked): from add_torrent to the metadata (libtorrent's
# metadata_received_alert / has_metadata) and to complete.
#
# Everything runs inside a fresh network namespace that has only `lo`:
#   opentracker   127.0.0.1:$TRACKER_PORT (HTTP and UDP)
#   strand seed   127.0.1.5:$SEED_PORT
#   libtorrent    127.0.2.5:$LEECH_PORT
#
# Environment:
#   STRAND       path to the strand binary (default: target/release/strand)
#   DL_TIMEOUT   seconds libtorrent may take (default 300)
#   RUST_LOG     strand's log filter (default strand=debug, into its log file)
#   LT_DIRECT=0  no x.pe in the magnet link: tracker only
#   KEEP_WORK=1  keep the temp dir (payload, logs, output) after the run
CASE_NAME=${CASE_NAME:-magnet_to_libtorrent}
. "$(dirname "$0")/lib.sh"

strand_only "strand is the seeder here"
STRAND=${STRAND:-$REPO_ROOT/target/release/strand}
DL_TIMEOUT=${DL_TIMEOUT:-300}
LT_DIRECT=${LT_DIRECT:-1}
LT_PYTHON=${LT_PYTHON:-/usr/bin/python3}

TRACKER_IP=127.0.0.1
TRACKER_PORT=6969
SEED_IP=127.0.1.5
SEED_PORT=6885
LEECH_IP=127.0.2.5
LEECH_PORT=6895
ANNOUNCE="http://$TRACKER_IP:$TRACKER_PORT/announce"
PIECE_EXP=18            # 256 KiB pieces
NAME=strand-magnet-to-libtorrent

# 32 MiB in all (33554432 bytes); sizes off the piece grid, one empty file, nesting.
PAYLOAD_SPEC=(
    "$NAME/big.bin:16777217"
    "$NAME/docs/readme.txt:1000"
    "$NAME/docs/empty.txt:0"
    "$NAME/docs/nested/deep/c.bin:10000003"
    "$NAME/media/d.bin:6776212"
)

require ip opentracker mktorrent transmission-show python3 cmp timeout
require_strand 'strand seed' "has no 'seed' subcommand"
require_libtorrent

interop_init

# ---------------------------------------------------------------- payload + torrent
setup_payload "32 MiB" "${PAYLOAD_SPEC[@]}"
torrent_by_mktorrent "$PIECE_EXP" "$ANNOUNCE"
MAGNET=$(transmission-show -m "$TORRENT" | grep -m1 '^magnet:') || die "transmission-show -m printed no magnet link"
[[ ${MAGNET,,} == *"xt=urn:btih:$INFOHASH"* ]] || die "magnet link does not carry info hash $INFOHASH"
[[ $LT_DIRECT == 1 ]] && MAGNET="$MAGNET&x.pe=$SEED_IP:$SEED_PORT"
log "magnet: $MAGNET"

# ---------------------------------------------------------------- tracker + strand seeder
start_opentracker "$TRACKER_IP" "$TRACKER_PORT" "$INFOHASH"
start_strand_seed "$SEED_IP" "$SEED_PORT"

# ---------------------------------------------------------------- libtorrent, magnet only
log "libtorrent fetches the magnet link from strand (timeout ${DL_TIMEOUT}s, x.pe: $LT_DIRECT)"
run_libtorrent "$MAGNET" "$OUT_DIR" "$LEECH_IP" "$LEECH_PORT" "$DL_TIMEOUT"
is_running "$PID_strand_seed" || die "strand seed exited before the end of the test"
grep -q '^METADATA ' "$LT_LOG" || die "libtorrent completed without reporting the metadata"

log "comparing files"
compare_tree "$TORRENT" "$SEED_DIR" "$OUT_DIR" || die "downloaded files differ from the payload"
leak_check

read -r _ meta_secs lt_secs bytes < <(grep '^DONE ' "$LT_LOG")
mib=$(( bytes / 1048576 ))
log "RESULT: libtorrent <- strand (magnet): metadata in $(printf '%.2f' "$meta_secs")s, ${mib} MiB in $(printf '%.2f' "$lt_secs")s total from add_torrent ($(awk -v m="$bytes" -v s="$lt_secs" 'BEGIN{ if (s > 0) printf "%.1f", m/1048576/s; else print "inf" }') MiB/s incl. metadata)"
stop_name strand-seed
interop_pass
