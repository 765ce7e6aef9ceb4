#!/usr/bin/env bash
# Interop case: `strand download --bind 127.0.0.77` speaks from that address only, to the
# tracker (HTTP and UDP) and to the seeder (issue 14).
#
#   opentracker      127.0.0.1:6969 (HTTP and UDP): it lists a peer at the source address
#                    of its announce, so its peer list shows where strand's announce came from
#   libtorrent seed  127.0.4.1:7201, announcing over HTTP; outgoing TCP off, so every
#                    connection it has was opened by strand (none is one it dialed itself)
#   strand download  --bind 127.0.0.77, peers from the tracker only, twice: with the
#                    torrent's http:// announce (--port 7277), then with a copy whose only
#                    announce is udp:// (same info hash; --port 7278, a fresh tracker entry);
#                    --download-limit 1M stretches the 6 MiB over ~6 s, time to look
#
# Asserts, in each round while strand downloads: the tracker's peer list (a probe announce
# over HTTP, torrent_tool.py peers) has strand at 127.0.0.77:PORT and strand's port at no
# other address; the seeder's peer_info shows a new peer at 127.0.0.77 and none at any other
# address, and its peer log an incoming connection from there. Then the files compare byte
# for byte.
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
UDP_ANNOUNCE="udp://$TRACKER_IP:$TRACKER_PORT/announce"
SEED_IP=127.0.4.1
SEED_PORT=7201
BIND_IP=127.0.0.77
NAME=strand-bind-payload
SEED_LOG=

require ip opentracker mktorrent python3 cmp timeout
require_strand
require_libtorrent
interop_init

setup_payload "6 MiB" "$NAME/a.bin:4194304" "$NAME/b.bin:2097152"
torrent_by_mktorrent 16 "$ANNOUNCE"
UDP_TORRENT=$WORK/payload-udp.torrent
mktorrent -d -l 16 -a "$UDP_ANNOUNCE" -o "$UDP_TORRENT" "$SEED_DIR/$NAME" >>"$WORK/logs/mktorrent.log" 2>&1 \
    || die "mktorrent (udp) failed"
[[ $(python3 "$TOOL" infohash "$UDP_TORRENT") == "$INFOHASH" ]] || die "the udp:// copy has another info hash"
start_opentracker "$TRACKER_IP" "$TRACKER_PORT" "$INFOHASH"

LT_SETTINGS='{"enable_outgoing_tcp": false}' LT_PEER_LOG=1 start_bg lt-seed "$LT_PYTHON" -u \
    "$INTEROP_DIR/clients/lt_seed.py" "$TORRENT" "$SEED_DIR" "$SEED_IP" "$SEED_PORT"
SEED_LOG=$WORK/logs/lt-seed.log
WAIT_ALIVE="$PID_lt_seed" wait_for 60 "libtorrent checked the data and seeds" grep -q '^SEEDING' "$SEED_LOG"
WAIT_ALIVE="$PID_lt_seed $PID_opentracker" wait_for 60 "the tracker lists the seeder" \
    tracker_lists_seeder "$ANNOUNCE" "$INFOHASH"

# tracker_lists_strand PORT : the tracker's peer list (saved in $WORK/tracker-peers.txt) has
# BIND_IP:PORT, and PORT at no other address.
tracker_lists_strand() {
    nsx python3 "$TOOL" peers "$ANNOUNCE" "$INFOHASH" >"$WORK/tracker-peers.txt" || return 1
    grep -qx "$BIND_IP:$1" "$WORK/tracker-peers.txt" \
        && ! grep -v "^$BIND_IP:" "$WORK/tracker-peers.txt" | grep -q ":$1\$"
}

# seeder_saw_strand FROM_LINE : the seeder's log after line FROM_LINE has a PEER line (a new
# peer_info address) at BIND_IP.
seeder_saw_strand() { tail -n +"$(( $1 + 1 ))" "$SEED_LOG" | grep -q "^PEER $BIND_IP:"; }

# bind_round LABEL TORRENT ANNOUNCE PORT : strand downloads TORRENT (whose only tracker is
# ANNOUNCE) into $WORK/out-LABEL from BIND_IP:PORT.
bind_round() {
    local label=$1 torrent=$2 announce=$3 port=$4 from incoming others
    from=$(wc -l <"$SEED_LOG")
    OUT_DIR=$WORK/out-$label
    DL_LOG=$WORK/logs/downloader-$label.log
    DL_START=$(date +%s.%N)
    RUST_LOG=${RUST_LOG:-strand=debug} start_bg "downloader-$label" timeout --kill-after=10 "$DL_TIMEOUT" \
        "$STRAND" download "$torrent" -o "$OUT_DIR" -q --no-dht --bind "$BIND_IP" --port "$port" \
        --download-limit 1M
    DL_PID=$(pid_of "downloader-$label")
    WAIT_ALIVE="$DL_PID $PID_opentracker" wait_for 30 "$label: the tracker lists strand at $BIND_IP:$port" \
        tracker_lists_strand "$port"
    log "$label: the tracker's peer list: $(tr '\n' ' ' <"$WORK/tracker-peers.txt")"
    WAIT_ALIVE="$DL_PID $PID_lt_seed" wait_for 30 "$label: the seeder's peer_info has a new peer at $BIND_IP" \
        seeder_saw_strand "$from"
    log "$label: seeder: $(tail -n +"$(( from + 1 ))" "$SEED_LOG" | grep -m1 "^PEER $BIND_IP:")"
    # libtorrent's peer log names the remote end of each connection it accepted.
    incoming=$(tail -n +"$(( from + 1 ))" "$SEED_LOG" | grep -m1 "INCOMING_CONNECTION \[ ep: $BIND_IP:" || true)
    [[ -n $incoming ]] || die "$label: libtorrent's peer log shows no incoming connection from $BIND_IP"
    log "$label: seeder's peer log: ...${incoming#*] }"
    others=$(grep '^PEER ' "$SEED_LOG" | grep -v "^PEER $BIND_IP:" || true)
    [[ -z $others ]] || die "$label: the seeder also saw peers at other addresses: $others"
    wait_strand_download
    announce_replied "$DL_LOG" "$announce" || die "$label: strand's log shows no reply from $announce"
    compare_tree "$torrent" "$SEED_DIR" "$OUT_DIR" || die "$label: downloaded files differ from the payload"
}

bind_round http "$TORRENT" "$ANNOUNCE" 7277
http_secs=$DL_SECS
bind_round udp "$UDP_TORRENT" "$UDP_ANNOUNCE" 7278
leak_check
log "RESULT: --bind $BIND_IP: opentracker lists strand at $BIND_IP (HTTP and UDP announces), the seeder saw it connect from $BIND_IP; 6 MiB in ${http_secs}s and ${DL_SECS}s"
interop_pass
