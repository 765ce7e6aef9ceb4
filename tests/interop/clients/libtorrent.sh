# shellcheck shell=bash
# Driver: libtorrent-rasterbar 2.0.8 through Debian's python3 binding (python3-libtorrent,
# /usr/bin/python3): lt_seed.py seeds until SIGTERM, ../lt_download.py downloads and exits
# 0 once complete. Sessions with no default plugins (no ut_pex), ut_metadata added where a
# magnet link needs it; DHT, LSD, UPnP, NAT-PMP and uTP off; listen and outgoing sockets on
# CLIENT_IP. Extra settings for a mode go in LT_SETTINGS (JSON), read by both scripts.
LT_PYTHON=${LT_PYTHON:-/usr/bin/python3}
CLIENT_REQUIRES=("$LT_PYTHON")
SEEDS_MODES="plain magnet"
GETS_MODES="plain magnet"

client_version() { "$LT_PYTHON" -c 'import libtorrent; print("libtorrent", libtorrent.__version__)'; }

client_seed() {
    start_bg lt-seed "$LT_PYTHON" -u "$INTEROP_DIR/clients/lt_seed.py" "$TORRENT" "$SEED_DIR" "$CLIENT_IP" "$CLIENT_PORT"
    CLIENT_PIDS=$PID_lt_seed
    WAIT_ALIVE="$CLIENT_PIDS" wait_for 60 "libtorrent checked the data and seeds" grep -q '^SEEDING' "$WORK/logs/lt-seed.log"
}

client_get() {
    start_bg lt-download "$LT_PYTHON" -u "$INTEROP_DIR/lt_download.py" "$1" "$OUT_DIR" "$CLIENT_IP" "$CLIENT_PORT" "$DL_TIMEOUT"
    CLIENT_PIDS=$PID_lt_download
}

client_done() { exited_ok "$PID_lt_download"; }
client_progress() { grep progress "$WORK/logs/lt-download.log" | tail -n 1; }
