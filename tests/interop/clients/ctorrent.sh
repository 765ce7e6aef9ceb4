# shellcheck shell=bash
# Driver: Enhanced CTorrent dnh3.3.2. No RPC: a seeder runs until stopped (-e 1: an hour
# at most), a downloader exits 0 once complete (-e 0, the "done" test). It reads commands
# from stdin (start_bg gives it /dev/null). -s names the torrent's folder, -b the bitfield
# file (absent: a seeder hash-checks its data). On loopback it takes 127.0.0.1 for its own
# address and drops every connection from it ("Connection from myself"): -i and -I put it
# on CLIENT_IP (listen, announce, and the address it calls its own). ctorrent has no DHT, PEX, LSD, UPnP, uTP or encryption at all,
# and no extension protocol (BEP 10), hence no magnet links or metadata exchange (BEP 9).
CLIENT_REQUIRES=(ctorrent)
SEEDS_MODES="plain"
GETS_MODES="plain"
declare -A NOT_APPLICABLE=(
    [seeds:magnet]="ctorrent has no extension protocol (BEP 10), so it cannot send metadata (BEP 9)"
    [gets:magnet]="ctorrent cannot take magnet links: no extension protocol (BEP 10), no BEP 9"
    [seeds:encrypted]="ctorrent has no MSE/PE encryption"
    [gets:encrypted]="ctorrent has no MSE/PE encryption"
)

client_version() { ctorrent -h 2>&1 | grep -m1 -i ctorrent | sed 's/ *Original.*//'; }

client_seed() {
    start_bg ctorrent-seed ctorrent -e 1 -i "$CLIENT_IP" -I "$CLIENT_IP" -p "$CLIENT_PORT" -s "$SEED_DIR/$NAME" -b "$WORK/ctorrent-seed.bf" "$TORRENT"
    CLIENT_PIDS=$PID_ctorrent_seed
}

client_get() {
    start_bg ctorrent-get ctorrent -e 0 -i "$CLIENT_IP" -I "$CLIENT_IP" -p "$CLIENT_PORT" -s "$OUT_DIR/$NAME" -b "$WORK/ctorrent-get.bf" "$1"
    CLIENT_PIDS=$PID_ctorrent_get
}

client_done() { exited_ok "$PID_ctorrent_get"; }
client_progress() { tail -c 200 "$WORK/logs/ctorrent-get.log" | tr '\r' '\n' | tail -n 1; }
