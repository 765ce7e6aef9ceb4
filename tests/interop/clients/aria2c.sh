# shellcheck shell=bash
# Driver: aria2c 1.36. Quirks (../../shared/INTEROP-NOTES.md):
#  - DHT (v4 and v6), LPD and PEX are on by default: all turned off here; --interface binds
#    its tracker and peer sockets to CLIENT_IP;
#  - it sends its BITFIELD late, after HAVEs and pieces (strand must tolerate it);
#  - it opens with an MSE handshake that settles on plaintext, then falls back to a plain one;
#    encrypted: --bt-require-crypto --bt-min-crypto-level=arc4 (RC4 streams only).
# As a seeder: -V re-hashes the data, --seed-ratio=0.0 seeds until stopped (SIGTERM).
# As a downloader: --seed-time=0 exits 0 once complete (the "done" test).
CLIENT_REQUIRES=(aria2c)
SEEDS_MODES="plain magnet encrypted"
GETS_MODES="plain magnet encrypted"

client_version() { aria2c --version 2>&1; }

aria2c_common() {
    printf '%s\n' --no-conf --enable-dht=false --enable-dht6=false --bt-enable-lpd=false \
        --enable-peer-exchange=false --disable-ipv6=true --interface="$CLIENT_IP" \
        --listen-port="$CLIENT_PORT" --bt-save-metadata=false --file-allocation=none \
        --summary-interval=5 --console-log-level=notice --log="$WORK/logs/aria2c-debug.log" --log-level=info
    [[ $MODE != encrypted ]] || printf '%s\n' --bt-require-crypto=true --bt-min-crypto-level=arc4
}

client_seed() {
    local -a common
    mapfile -t common < <(aria2c_common)
    start_bg aria2c-seed aria2c "${common[@]}" -V --seed-ratio=0.0 -d "$SEED_DIR" "$TORRENT"
    CLIENT_PIDS=$PID_aria2c_seed
    # Ready once it announced as a seeder: cell.sh waits for the tracker to list it.
}

client_get() {
    local -a common
    mapfile -t common < <(aria2c_common)
    start_bg aria2c-get aria2c "${common[@]}" --seed-time=0 -d "$OUT_DIR" "$1"
    CLIENT_PIDS=$PID_aria2c_get
}

client_done() { exited_ok "$PID_aria2c_get"; }
client_progress() { grep -E '^\[#' "$WORK/logs/aria2c-get.log" | tail -n 1; }
