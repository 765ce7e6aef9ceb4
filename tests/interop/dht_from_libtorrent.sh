#!/usr/bin/env bash
# Interop case (DHT): strand fetches a trackerless magnet link from a DHT-only libtorrent
# seeder. No tracker exists; the magnet link is `magnet:?xt=urn:btih:HASH` alone.
#
#   libtorrent node   127.0.3.1:$ROUTER_PORT  a DHT node with no torrent (the router)
#   libtorrent seed   127.0.3.2:$SEED_PORT    seeds, trackers dropped, DHT via the router
#   strand download   127.0.3.3:$LEECH_PORT   --dht-bootstrap the router, nothing else
#
# Logs the time from strand's start to the metadata and to completion. Runs in a fresh
# network namespace with only lo.
#
# Environment: STRAND (default target/release/strand), DL_TIMEOUT (default 180), KEEP_WORK=1.
CASE_NAME=${CASE_NAME:-dht_from_libtorrent}
. "$(dirname "$0")/lib.sh"

strand_only "tests strand's DHT download"
ROUTER_IP=127.0.3.1; ROUTER_PORT=7101
SEED_IP=127.0.3.2;   SEED_PORT=7102
LEECH_IP=127.0.3.3;  LEECH_PORT=7103
dht_case_init strand-dht-from-libtorrent

start_bg lt-router "$LT_PYTHON" -u "$INTEROP_DIR/lt_dht.py" node "$ROUTER_IP" "$ROUTER_PORT" $((DL_TIMEOUT + 120)) "$ROUTER_IP:$ROUTER_PORT"
start_bg lt-seed "$LT_PYTHON" -u "$INTEROP_DIR/lt_dht.py" seed "$SEED_IP" "$SEED_PORT" $((DL_TIMEOUT + 120)) "$ROUTER_IP:$ROUTER_PORT" "$TORRENT" "$SEED_DIR"
WAIT_ALIVE="$PID_lt_seed $PID_lt_router" wait_for 60 "libtorrent seeds" grep -q '^SEEDING' "$WORK/logs/lt-seed.log"
# libtorrent announces a torrent it holds by itself once its DHT has a node.
WAIT_ALIVE="$PID_lt_seed $PID_lt_router" wait_for 60 "the libtorrent seeder announced to the router" \
    grep -q 'incoming dht announce: 127.0.3.2' "$WORK/logs/lt-router.log"

log "strand downloads $MAGNET (timeout ${DL_TIMEOUT}s)"
start=$(date +%s.%N)
rc=0
XDG_STATE_HOME=$WORK/state STRAND_DHT_LOOPBACK_ONLY=1 RUST_LOG=${RUST_LOG:-strand::dht=debug,strand=info} \
    run_ns strand-download timeout --kill-after=10 "$DL_TIMEOUT" "$STRAND" download "$MAGNET" -o "$OUT_DIR" \
    --bind "$LEECH_IP" --port "$LEECH_PORT" --dht-bootstrap "$ROUTER_IP:$ROUTER_PORT" -q || rc=$?
(( rc == 0 )) || die "strand download exited with status $rc"
secs=$(elapsed_since "$start")
dht_case_check "$WORK/logs/strand-download.log"
log "RESULT: strand <- libtorrent over the DHT alone (trackerless magnet): complete in ${secs}s"
interop_pass
