# shellcheck shell=bash
# Driver: deluged 2.0.3 (libtorrent 2.0 inside), driven over its own RPC with deluge_rpc.py
# (deluge-console takes ~20 s a call here). Quirks:
#  - it creates its libtorrent session with DHT, LSD, UPnP and NAT-PMP ON before it reads
#    its config (so it must run in a namespace): session.state, which it loads first, turns
#    them and uTP off, then core.conf turns DHT, LSD, UPnP, NAT-PMP and PEX (utpex) off;
#    the driver reads them back over RPC;
#  - with Python 3.11 its logger breaks on info, debug and warning lines: -L error;
#  - it writes an `auth` file with the localclient password at start; the RPC logs in with it;
#  - encrypted: enc_in_policy = enc_out_policy = 0 (forced), enc_level 1 (RC4; 0 is
#    handshake only, 2 either), read back over RPC.
LT_PYTHON=${LT_PYTHON:-/usr/bin/python3}
CLIENT_REQUIRES=(deluged "$LT_PYTHON")
SEEDS_MODES="plain magnet encrypted"
GETS_MODES="plain magnet encrypted"
DELUGE_RPC=127.0.0.1:58846

client_version() { deluged --version 2>/dev/null | head -n 1; }

dg_rpc() { nsx "$LT_PYTHON" "$INTEROP_DIR/clients/deluge_rpc.py" "$DELUGE_RPC" "$WORK/deluge/auth" "$@"; }

# dg_start DATA_DIR
dg_start() {
    local dir=$1 cfg=$WORK/deluge key value want enc="1 1 2"
    [[ $MODE == encrypted ]] && enc="0 0 1"
    mkdir -p "$cfg"
    "$LT_PYTHON" - "$cfg" "$CLIENT_IP" "$CLIENT_PORT" "$dir" "${DELUGE_RPC##*:}" $enc <<'PY'
import json, sys
cfg, ip, port, data, rpc_port, enc_in, enc_out, enc_level = sys.argv[1:]
port = int(port)
# libtorrent settings loaded before anything else (bencoded session state).
lt_settings = {"enable_dht": 0, "enable_lsd": 0, "enable_upnp": 0, "enable_natpmp": 0,
               "enable_outgoing_utp": 0, "enable_incoming_utp": 0,
               "allow_multiple_connections_per_ip": 1}
def benc(x):
    if isinstance(x, int):
        return b"i%de" % x
    if isinstance(x, str):
        x = x.encode()
        return b"%d:%s" % (len(x), x)
    return b"d" + b"".join(benc(k) + benc(v) for k, v in sorted(x.items())) + b"e"
with open(cfg + "/session.state", "wb") as f:
    f.write(benc({"settings": lt_settings}))
core = {"dht": False, "upnp": False, "natpmp": False, "utpex": False, "lsd": False,
        "listen_ports": [port, port], "random_port": False, "listen_interface": ip,
        "outgoing_interface": ip, "download_location": data, "move_completed": False,
        "enc_in_policy": int(enc_in), "enc_out_policy": int(enc_out), "enc_level": int(enc_level), "new_release_check": False,
        "daemon_port": int(rpc_port), "allow_remote": False, "auto_managed": False,
        "stop_seed_at_ratio": False, "pre_allocate_storage": False, "send_info": False}
with open(cfg + "/core.conf", "w") as f:
    f.write(json.dumps({"file": 1, "format": 1}, indent=4) + json.dumps(core, indent=4))
PY
    start_bg deluged deluged -d -c "$cfg" -u 127.0.0.1 -p "${DELUGE_RPC##*:}" -L error
    CLIENT_PIDS=$PID_deluged
    WAIT_ALIVE="$CLIENT_PIDS" wait_for 30 "deluged RPC up" dg_rpc status
    for want in dht=False lsd=False upnp=False natpmp=False utpex=False \
        enc_in_policy="${enc%% *}" enc_level="${enc##* }"; do
        key=${want%%=*}
        value=$(dg_rpc config "$key") || die "deluged: cannot read $key"
        [[ $value == "${want#*=}" ]] || die "deluged: $key is $value, want ${want#*=}"
    done
}

dg_status() { dg_rpc status; }

client_seed() {
    dg_start "$SEED_DIR"
    dg_rpc add "$TORRENT" "$SEED_DIR" >>"$WORK/logs/deluge-rpc.log" || die "deluged refused the torrent"
    WAIT_ALIVE="$CLIENT_PIDS" wait_for 60 "deluged checked the data and seeds" dg_seeding
}
dg_seeding() { dg_status | grep -q " Seeding 100.0 "; }

client_get() {
    dg_start "$OUT_DIR"
    if [[ $1 == magnet:* ]]; then
        dg_rpc magnet "$1" "$OUT_DIR" >>"$WORK/logs/deluge-rpc.log"
    else
        dg_rpc add "$1" "$OUT_DIR" >>"$WORK/logs/deluge-rpc.log"
    fi || die "deluged refused the download"
}

client_done() { dg_status | awk -v n="$BYTES" '$3 == "100.0" && $4 == n {ok = 1} END {exit !ok}'; }
client_progress() { dg_status; }
