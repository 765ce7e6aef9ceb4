# shellcheck shell=bash
# Driver: rtorrent 0.9.8 (libtorrent 0.13.8, rakshasa's), driven over XML-RPC on SCGI
# (127.0.0.1:5000, rtorrent_rpc.py). Quirks:
#  - it is a curses program: system.daemon.set=true runs it without a terminal;
#  - -n skips ~/.rtorrent.rc; the config is written at run time and imported with -o;
#  - DHT off (dht.mode), PEX off, no UDP trackers; it has no LSD, UPnP or uTP;
#    network.bind_address and network.local_address put its sockets and announces on
#    CLIENT_IP;
#  - load.start_verbose takes a .torrent or a magnet link; d.directory.set points a
#    multi-file torrent at the folder that holds its top folder;
#  - encrypted: protocol.encryption require,require_RC4 (RC4 streams only, both ways).
CLIENT_REQUIRES=(rtorrent)
SEEDS_MODES="plain magnet encrypted"
GETS_MODES="plain magnet encrypted"
RT_SCGI=127.0.0.1:5000

client_version() { rtorrent -h 2>&1 | head -n 1; }

rt_rpc() { nsx python3 "$INTEROP_DIR/clients/rtorrent_rpc.py" "$RT_SCGI" "$@"; }

# rt_start DATA_DIR
rt_start() {
    local dir=$1 cfg=$WORK/rtorrent encryption=allow_incoming,try_outgoing,enable_retry
    [[ $MODE == encrypted ]] && encryption=allow_incoming,try_outgoing,require,require_RC4
    mkdir -p "$cfg/session"
    cat >"$cfg/rtorrent.rc" <<RC
system.daemon.set = true
session.path.set = $cfg/session
directory.default.set = $dir
network.port_range.set = $CLIENT_PORT-$CLIENT_PORT
network.port_random.set = no
network.bind_address.set = $CLIENT_IP
network.local_address.set = $CLIENT_IP
network.scgi.open_port = $RT_SCGI
dht.mode.set = disable
protocol.pex.set = no
trackers.use_udp.set = no
protocol.encryption.set = $encryption
pieces.hash.on_completion.set = no
log.open_file = main, $WORK/logs/rtorrent-internal.log
log.add_output = info, main
RC
    start_bg rtorrent rtorrent -n -o "import=$cfg/rtorrent.rc"
    CLIENT_PIDS=$PID_rtorrent
    WAIT_ALIVE="$CLIENT_PIDS" wait_for 20 "rtorrent XML-RPC up" rt_rpc system.client_version
}

# rt_field FIELD : FIELD (d.complete, d.bytes_done, ...) of the torrent, by its info hash.
rt_field() { rt_rpc "$1" "${INFOHASH^^}"; }

client_seed() {
    rt_start "$SEED_DIR"
    rt_rpc load.start_verbose "" "$TORRENT" "d.directory.set=$SEED_DIR" >/dev/null || die "rtorrent refused the torrent"
    WAIT_ALIVE="$CLIENT_PIDS" wait_for 60 "rtorrent checked the data and seeds" rt_complete
}
# Complete, and not the metadata-only download a magnet link makes first (same hash).
rt_complete() { [[ $(rt_field d.complete) == 1 && $(rt_field d.size_bytes) == "$BYTES" ]]; }

client_get() {
    rt_start "$OUT_DIR"
    rt_rpc load.start_verbose "" "$1" "d.directory.set=$OUT_DIR" >/dev/null || die "rtorrent refused the download"
}

client_done() { rt_complete; }
client_progress() { echo "bytes done: $(rt_field d.bytes_done 2>&1), peers: $(rt_field d.peers_connected 2>&1)"; }
