#!/usr/bin/env bash
# Interop case (DHT): libtorrent fetches a trackerless magnet link from strand, joining the
# DHT through strand's node alone. No tracker exists.
#
#   strand seed       127.0.3.12:$SEED_PORT   (UDP on the same port number: its DHT node)
#   libtorrent fetch  127.0.3.13:$LEECH_PORT  DHT bootstrap: strand's node, nothing else
#
# strand's seed has no node to join through at first (--dht-bootstrap names its own
# address, which it does not count); libtorrent's queries make it known. Runs in a fresh
# network namespace with only lo.
#
# Environment: STRAND (default target/release/strand), DL_TIMEOUT (default 180), KEEP_WORK=1.
CASE_NAME=${CASE_NAME:-dht_to_libtorrent}
. "$(dirname "$0")/lib.sh"

strand_only "strand is the seeder here"
SEED_IP=127.0.3.12;  SEED_PORT=7112
LEECH_IP=127.0.3.13; LEECH_PORT=7113
# The torrent's announce URL points where nothing listens: only the DHT finds strand.
dht_case_init strand-dht-to-libtorrent
XDG_STATE_HOME=$WORK/state STRAND_DHT_LOOPBACK_ONLY=1 RUST_LOG=${RUST_LOG:-strand::dht=debug,strand=info} \
    start_bg strand-seed "$STRAND" seed --dht-bootstrap "$SEED_IP:$SEED_PORT" "$TORRENT" -d "$SEED_DIR" \
    --bind "$SEED_IP" --port "$SEED_PORT" --tracker-timeout 5 -q
WAIT_ALIVE="$PID_strand_seed" wait_for 60 "strand seed's DHT node is up" \
    nsx python3 -c "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1); s.sendto(b'd1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:ping1:t2:pp1:y1:qe', ('$SEED_IP', $SEED_PORT)); s.recv(1500)"

log "libtorrent fetches $MAGNET through strand's DHT node (timeout ${DL_TIMEOUT}s)"
rc=0
run_ns libtorrent timeout --kill-after=10 $((DL_TIMEOUT + 30)) "$LT_PYTHON" -u "$INTEROP_DIR/lt_dht.py" \
    fetch "$LEECH_IP" "$LEECH_PORT" "$DL_TIMEOUT" "$SEED_IP:$SEED_PORT" "$MAGNET" "$OUT_DIR" || rc=$?
(( rc == 0 )) || die "libtorrent exited with status $rc"
is_running "$PID_strand_seed" || die "strand seed exited before the end of the test"
dht_case_check "$WORK/logs/strand-seed.log"
read -r _ meta_secs lt_secs bytes < <(grep '^DONE ' "$WORK/logs/libtorrent.log")
log "RESULT: libtorrent <- strand over strand's DHT node alone: metadata in ${meta_secs}s, $bytes bytes in ${lt_secs}s"
stop_name strand-seed
interop_pass
