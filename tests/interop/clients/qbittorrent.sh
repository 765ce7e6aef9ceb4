# shellcheck shell=bash
# Driver: qBittorrent-nox 4.5.2 (libtorrent 2.0 inside), driven over its WebUI API on
# 127.0.0.1:8081 with curl. Quirks:
#  - it shows a legal notice and waits for a key on first start: [LegalNotice] Accepted=true;
#  - the WebUI asks for a login even on localhost unless LocalHostAuth=false, and refuses
#    requests without a matching Host/Referer unless CSRF and host-header checks are off;
#  - qBittorrent.conf is written before the start (DHT, LSD, PEX, UPnP/NAT-PMP off, TCP
#    only, listen and announce on CLIENT_IP, no queueing, no temp folder), and the
#    preferences the WebUI reports are checked against it after the start;
#  - encrypted: Session\\Encryption=1 (require; 0 is prefer, 2 off). Witness: the peer
#    flags of its WebUI, sampled every 0.2 s into qb-peers.log, show `E` ("Encrypted
#    traffic": RC4; `e` is an encrypted handshake only) for strand. To give the sampler a
#    transfer long enough to see, its rates are limited to QB_ENC_LIMIT KiB/s (LAN peers too).
CLIENT_REQUIRES=(qbittorrent-nox curl)
SEEDS_MODES="plain magnet encrypted"
GETS_MODES="plain magnet encrypted"
QB_WEBUI_PORT=8081
QB="http://127.0.0.1:$QB_WEBUI_PORT/api/v2"
QB_ENC_LIMIT=1024

client_version() { qbittorrent-nox --version 2>&1; }

qb_api() { nsx curl -sS --max-time 10 "$@"; }

# qb_start SAVE_DIR : write the profile, start qbittorrent-nox, wait for the WebUI, check
# that DHT, LSD, PEX and UPnP are off and the protocol is TCP only.
qb_start() {
    local save=$1 profile=$WORK/qbittorrent encryption=0 limit=0 prefs
    [[ $MODE == encrypted ]] && encryption=1 limit=$QB_ENC_LIMIT
    mkdir -p "$profile/qBittorrent/config"
    cat >"$profile/qBittorrent/config/qBittorrent.conf" <<CONF
[LegalNotice]
Accepted=true

[BitTorrent]
Session\\DHTEnabled=false
Session\\LSDEnabled=false
Session\\PeXEnabled=false
Session\\Port=$CLIENT_PORT
Session\\InterfaceAddress=$CLIENT_IP
Session\\BTProtocol=TCP
Session\\Encryption=$encryption
Session\\GlobalDLSpeedLimit=$limit
Session\\GlobalUPSpeedLimit=$limit
Session\\IgnoreLimitsOnLAN=false
Session\\DefaultSavePath=$save
Session\\TempPathEnabled=false
Session\\AddTorrentPaused=false
Session\\QueueingSystemEnabled=false
Session\\AnonymousModeEnabled=false
Session\\Preallocation=false

[Network]
PortForwardingEnabled=false

[Preferences]
Connection\\UPnP=false
WebUI\\Enabled=true
WebUI\\Address=127.0.0.1
WebUI\\Port=$QB_WEBUI_PORT
WebUI\\LocalHostAuth=false
WebUI\\CSRFProtection=false
WebUI\\HostHeaderValidation=false
WebUI\\ClickjackingProtection=false
CONF
    start_bg qbittorrent qbittorrent-nox --profile="$profile"
    CLIENT_PIDS=$PID_qbittorrent
    WAIT_ALIVE="$CLIENT_PIDS" wait_for 30 "qBittorrent WebUI up" qb_api "$QB/app/version"
    prefs=$(qb_api "$QB/app/preferences") || die "qBittorrent: cannot read preferences"
    python3 - "$prefs" "$CLIENT_IP" "$CLIENT_PORT" "$encryption" "$limit" <<'PY' || die "qBittorrent did not take its settings"
import json, sys
p = json.loads(sys.argv[1])
want = {"encryption": int(sys.argv[4]), "dl_limit": int(sys.argv[5]) * 1024,
        "up_limit": int(sys.argv[5]) * 1024, "limit_lan_peers": True, "dht": False, "lsd": False, "pex": False, "upnp": False, "bittorrent_protocol": 1,
        "current_interface_address": sys.argv[2], "listen_port": int(sys.argv[3])}
bad = {k: p.get(k) for k, v in want.items() if p.get(k) != v}
if bad:
    sys.exit("qBittorrent preferences differ from the config: %s" % bad)
PY
    if [[ $MODE == encrypted ]]; then
        start_bg qb-peers bash -c 'for ((i = 0; i < $2 * 5; i++)); do
            curl -sS --max-time 2 "$1"; echo; sleep 0.2; done' _ "$QB/sync/torrentPeers?hash=$INFOHASH" "$DL_TIMEOUT"
    fi
}

qb_state() {
    qb_api "$QB/torrents/info" | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    print(t["state"], t["progress"], t["completed"])'
}

client_seed() {
    qb_start "$SEED_DIR"
    qb_api -F "torrents=@$TORRENT" -F "savepath=$SEED_DIR" "$QB/torrents/add" >>"$WORK/logs/qb-api.log" \
        || die "qBittorrent refused the torrent"
    WAIT_ALIVE="$CLIENT_PIDS" wait_for 60 "qBittorrent checked the data and seeds" qb_seeding
}
qb_seeding() { qb_state | grep -Eq '^(uploading|stalledUP|queuedUP|forcedUP) 1 '; }

client_get() {
    qb_start "$OUT_DIR"
    if [[ $1 == magnet:* ]]; then
        qb_api -F "urls=$1" -F "savepath=$OUT_DIR" "$QB/torrents/add" >>"$WORK/logs/qb-api.log"
    else
        qb_api -F "torrents=@$1" -F "savepath=$OUT_DIR" "$QB/torrents/add" >>"$WORK/logs/qb-api.log"
    fi || die "qBittorrent refused the download"
}

# Complete: progress 1 and every byte verified (a magnet shows progress 0 until metadata).
client_done() { qb_state | awk -v n="$BYTES" '$2 == 1 && $3 == n {ok = 1} END {exit !ok}'; }
client_progress() { qb_state; }

client_witness() {
    [[ $MODE == encrypted ]] || return 0
    local flags
    # Every peer it has here is strand; a peer still connecting has no flags yet.
    flags=$(python3 -c '
import json, sys
seen = set()
for line in open(sys.argv[1]):
    try:
        peers = json.loads(line).get("peers", {})
    except ValueError:
        continue
    seen.update(p.get("flags", "").replace(" ", "") for p in peers.values() if p.get("flags"))
print(" ".join(sorted(seen)))' "$WORK/logs/qb-peers.log")
    [[ $flags == *E* ]] || die "qBittorrent's peer flags never showed E (RC4) for strand: '$flags'"
    [[ $flags != *e* ]] || die "qBittorrent's peer flags show e (encrypted handshake, plaintext stream): $flags"
    log "witness: qBittorrent's peer flags seen for strand: $flags"
    echo "qBittorrent's peer flags: \`E\` (encrypted traffic, RC4); its rates limited to $QB_ENC_LIMIT KiB/s so the sampler sees the transfer"
}
