#!/usr/bin/env bash
# Interop case: `strand download --bind 127.0.0.77` speaks from that address only, to the
# tracker and to the seeder (issue 14).
#
#   opentracker      127.0.0.1:6969 (HTTP): it lists a peer at the source address of its
#                    announce, so its peer list shows where strand's announce came from
#   libtorrent seed  127.0.4.1:7201, announcing to the tracker; outgoing TCP off, so every
#                    connection it has was opened by strand (none is one it dialed itself)
#   strand download  --bind 127.0.0.77 --port 7277, peers from the tracker only;
#                    --download-limit 1M stretches the 6 MiB over ~6 s, time to look
#
# Asserts, while strand downloads: the tracker's peer list (a probe announce,
# torrent_tool.py peers) has strand at 127.0.0.77:7277 and at no other address; the
# seeder's peer_info has a peer at 127.0.0.77, and its peer log shows the incoming
# connection from there. Then the download completes byte for byte.
#
# Environment: STRAND (default target/release/strand), DL_TIMEOUT (default 120), KEEP_WORK=1.
CASE_NAME=${CASE_NAME:-bind_address}
. "$(dirname "$0")/lib.sh"

strand_only "tests strand's --bind"
STRAND=${STRAND:-$REPO_ROOT/target/release/strand}
DL_TIMEOUT=${DL_TIMEOUT:-120}
LT_PYTHON=${LT_PYTHON:-/usr/bin/python3}
TRACKER_IP=127.0.0.1
TRACKER_PORT=6969
ANNOUNCE="http://$TRACKER_IP:$TRACKER_PORT/announce"
SEED_IP=127.0.4.1
SEED_PORT=7201
BIND_IP=127.0.0.77
BIND_PORT=7277
NAME=strand-bind-payload

require ip opentracker mktorrent python3 cmp timeout
require_strand
require_libtorrent
interop_init

setup_payload "6 MiB" "$NAME/a.bin:4194304" "$NAME/b.bin:2097152"
torrent_by_mktorrent 16 "$ANNOUNCE"
start_opentracker "$TRACKER_IP" "$TRACKER_PORT" "$INFOHASH"

LT_SETTINGS='{"enable_outgoing_tcp": false}' LT_PEER_LOG=1 start_bg lt-seed "$LT_PYTHON" -u \
    "$INTEROP_DIR/clients/lt_seed.py" "$TORRENT" "$SEED_DIR" "$SEED_IP" "$SEED_PORT"
WAIT_ALIVE="$PID_lt_seed" wait_for 60 "libtorrent checked the data and seeds" grep -q '^SEEDING' "$WORK/logs/lt-seed.log"
WAIT_ALIVE="$PID_lt_seed $PID_opentracker" wait_for 60 "the tracker lists the seeder" \
    tracker_lists_seeder "$ANNOUNCE" "$INFOHASH"

DL_LOG=$WORK/logs/downloader-strand.log
DL_START=$(date +%s.%N)
RUST_LOG=${RUST_LOG:-strand=debug} start_bg downloader-strand timeout --kill-after=10 "$DL_TIMEOUT" \
    "$STRAND" download "$TORRENT" -o "$OUT_DIR" -q --no-dht --bind "$BIND_IP" --port "$BIND_PORT" \
    --download-limit 1M
DL_PID=$PID_downloader_strand

# tracker_peers : the tracker's peer list, one IP:PORT a line, into $WORK/tracker-peers.txt.
tracker_peers() { nsx python3 "$TOOL" peers "$ANNOUNCE" "$INFOHASH" >"$WORK/tracker-peers.txt"; }
# tracker_lists_strand : the list has strand's port, and only at --bind's address.
tracker_lists_strand() {
    tracker_peers || return 1
    grep -qx "$BIND_IP:$BIND_PORT" "$WORK/tracker-peers.txt" \
        && ! grep -v "^$BIND_IP:" "$WORK/tracker-peers.txt" | grep -q ":$BIND_PORT\$"
}
WAIT_ALIVE="$DL_PID $PID_opentracker" wait_for 30 "the tracker lists strand at $BIND_IP:$BIND_PORT" \
    tracker_lists_strand
log "tracker's peer list: $(tr '\n' ' ' <"$WORK/tracker-peers.txt")"
WAIT_ALIVE="$DL_PID $PID_lt_seed" wait_for 30 "the seeder's peer_info has a peer at $BIND_IP" \
    grep -q "^PEER $BIND_IP:" "$WORK/logs/lt-seed.log"
log "seeder: $(grep -m1 "^PEER $BIND_IP:" "$WORK/logs/lt-seed.log")"
# libtorrent's peer log names the remote end of each connection, and INCOMING_CONNECTION
# for the ones it accepted.
incoming=$(grep -m1 "INCOMING_CONNECTION.*$BIND_IP\|$BIND_IP.*INCOMING_CONNECTION" "$WORK/logs/lt-seed.log" || true)
[[ -n $incoming ]] || die "libtorrent's peer log shows no incoming connection from $BIND_IP"
log "seeder's peer log: $incoming"
others=$(grep '^PEER ' "$WORK/logs/lt-seed.log" | grep -v "^PEER $BIND_IP:" || true)
[[ -z $others ]] || die "the seeder also saw peers at other addresses: $others"

wait_strand_download
compare_tree "$TORRENT" "$SEED_DIR" "$OUT_DIR" || die "downloaded files differ from the payload"
leak_check
log "RESULT: --bind $BIND_IP: the tracker lists strand at $BIND_IP:$BIND_PORT, the seeder saw it connect from $BIND_IP; 6 MiB in ${DL_SECS}s"
interop_pass
