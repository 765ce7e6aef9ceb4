# shellcheck shell=bash
# Driver: transmission-daemon 3.00, driven with transmission-remote (RPC on 127.0.0.1:9091).
# Quirks (../../shared/INTEROP-NOTES.md):
#  - it never dials 127.x peers it hears of from a tracker ("martian"): as a downloader it
#    only gets peers that connect to it, so strand must dial it (GETS_NEEDS_DIAL);
#  - it rechokes every 10 s: the first byte can take that long, so its MB/s here measure
#    the rechoke more than the wire;
#  - as a downloader it does not create the zero-length files of a multi-file torrent;
#  - settings.json is written before the start: DHT, LPD, PEX, uTP, port forwarding, speed
#    and ratio limits off; announces and peers bound to CLIENT_IP;
#  - encrypted: "encryption": 2 (required: it refuses plaintext peers). Witness: its deep
#    log (TR_DEBUG_FD=2) says `selecting crypto mode '2'` (RC4) for strand's connection.
CLIENT_REQUIRES=(transmission-daemon transmission-remote)
SEEDS_MODES="plain magnet encrypted"
GETS_MODES="plain magnet encrypted"
GETS_NEEDS_DIAL=1
EMPTY_FILES=skipped
TR_RPC_PORT=9091
TR="127.0.0.1:$TR_RPC_PORT"

client_version() { transmission-daemon -V 2>&1; }

# tr_start DOWNLOAD_DIR : write settings.json and start the daemon; wait until RPC answers.
tr_start() {
    local dl_dir=$1 cfg=$WORK/transmission encryption=0
    [[ $MODE == encrypted ]] && encryption=2
    mkdir -p "$cfg"
    cat >"$cfg/settings.json" <<JSON
{
    "alt-speed-enabled": false,
    "bind-address-ipv4": "$CLIENT_IP",
    "bind-address-ipv6": "::1",
    "blocklist-enabled": false,
    "dht-enabled": false,
    "download-dir": "$dl_dir",
    "encryption": $encryption,
    "idle-seeding-limit-enabled": false,
    "incomplete-dir-enabled": false,
    "lpd-enabled": false,
    "message-level": 2,
    "peer-port": $CLIENT_PORT,
    "peer-port-random-on-start": false,
    "pex-enabled": false,
    "port-forwarding-enabled": false,
    "ratio-limit-enabled": false,
    "rename-partial-files": false,
    "rpc-authentication-required": false,
    "rpc-bind-address": "127.0.0.1",
    "rpc-enabled": true,
    "rpc-host-whitelist-enabled": false,
    "rpc-port": $TR_RPC_PORT,
    "rpc-whitelist-enabled": false,
    "speed-limit-down-enabled": false,
    "speed-limit-up-enabled": false,
    "start-added-torrents": true,
    "utp-enabled": false,
    "watch-dir-enabled": false
}
JSON
    if [[ $MODE == encrypted ]]; then
        # Its deep log (to stderr, our log file) names the crypto each handshake selected.
        TR_DEBUG_FD=2 start_bg transmission transmission-daemon -f -g "$cfg" --log-info
    else
        start_bg transmission transmission-daemon -f -g "$cfg" --log-info
    fi
    CLIENT_PIDS=$PID_transmission
    WAIT_ALIVE="$CLIENT_PIDS" wait_for 20 "transmission RPC up" nsx transmission-remote "$TR" -l
}

tr_info() { nsx transmission-remote "$TR" -t all -i 2>&1; }

# Verified and seeding: a complete torrent shows "Idle" without peers, "Seeding" with.
tr_seeding() {
    local info
    info=$(tr_info) || return 1
    grep -q 'Percent Done: 100%' <<<"$info" && grep -Eq 'State: (Idle|Seeding)' <<<"$info"
}

client_seed() {
    tr_start "$SEED_DIR"
    nsx transmission-remote "$TR" -a "$TORRENT" -w "$SEED_DIR" >>"$WORK/logs/transmission-remote.log" 2>&1 \
        || die "transmission-remote -a failed"
    WAIT_ALIVE="$CLIENT_PIDS" wait_for 60 "transmission verified the data and seeds" tr_seeding
}

client_get() {
    tr_start "$OUT_DIR"
    nsx transmission-remote "$TR" -a "$1" -w "$OUT_DIR" >>"$WORK/logs/transmission-remote.log" 2>&1 \
        || die "transmission-remote -a failed"
}

client_done() { tr_info | grep -q 'Percent Done: 100%'; }
client_progress() { tr_info | grep -E 'Percent Done|State' | tr -s ' ' | tr '\n' ' '; }

# Stop the torrent first: the daemon then flushes and closes the files.
client_stop() {
    nsx transmission-remote "$TR" -t all -S >>"$WORK/logs/transmission-remote.log" 2>&1 || true
    stop_pid "$PID_transmission" 20
}

# In its deep log the crypto of a connection it accepted is `selecting crypto mode 'N'`, of
# one it opened `crypto select is N`; 1 is plaintext, 2 RC4. strand dials from STRAND_IP.
client_witness() {
    [[ $MODE == encrypted ]] || return 0
    local from="[$STRAND_IP]:" line
    line=$(grep -aF "$from" "$WORK/logs/transmission.log" | grep -aE "(selecting crypto mode '2'|crypto select is 2)" | head -n 1)
    [[ -n $line ]] || die "transmission's deep log shows no RC4 crypto select with strand"
    ! grep -aF "$from" "$WORK/logs/transmission.log" | grep -aqE "(selecting crypto mode '1'|crypto select is 1)" \
        || die "transmission's deep log shows a plaintext stream with strand"
    log "witness: transmission: ${line#*] }"
    echo "transmission's deep log: \`selecting crypto mode '2'\` (RC4)"
}
