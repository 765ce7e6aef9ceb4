# shellcheck shell=bash
# Driver: libtorrent-rasterbar 2.0.8 through Debian's python3 binding (python3-libtorrent,
# /usr/bin/python3): lt_seed.py seeds until SIGTERM, ../lt_download.py downloads and exits
# 0 once complete. Sessions with no default plugins (no ut_pex), ut_metadata added where a
# magnet link needs it; settings from ../lt_common.py (DHT, LSD, UPnP, NAT-PMP and uTP off;
# listen and outgoing sockets on CLIENT_IP) plus LT_SETTINGS (JSON) for a mode:
#  - encrypted: in_enc_policy = out_enc_policy = 0 (forced), allowed_enc_level = 2 (RC4).
# The peer log is always on (LT_PEER_LOG=1): it is the witness (INTEROP-NOTES.md;
# peer_info.flags never shows rc4_encrypted here, even on RC4 streams):
#  - encrypted: `*** ENCRYPTION [ ... rc4 ... ]` on every connection;
#  - BEP 6 (Fast extension), every mode: the FAST bit in strand's handshake
#    (`<== EXTENSIONS [ ... ext: FAST ... ]`); gets (libtorrent downloads from strand seed):
#    `<== HAVE_ALL` and `<== ALLOWED_FAST` from strand; seeds: libtorrent's `==> HAVE_ALL`
#    to strand, so strand's download started from a HAVE_ALL peer. LT_EXPECT_FAST=0 turns
#    these off (for a strand built before the Fast extension).
LT_PYTHON=${LT_PYTHON:-/usr/bin/python3}
CLIENT_REQUIRES=("$LT_PYTHON")
SEEDS_MODES="plain magnet encrypted"
GETS_MODES="plain magnet encrypted"
export LT_PEER_LOG=1
[[ $MODE == encrypted ]] && export LT_SETTINGS='{"in_enc_policy": 0, "out_enc_policy": 0, "allowed_enc_level": 2}'
LT_EXPECT_FAST=${LT_EXPECT_FAST:-1}

client_version() { "$LT_PYTHON" -c 'import libtorrent; print("libtorrent", libtorrent.__version__)'; }

client_seed() {
    start_bg lt-seed "$LT_PYTHON" -u "$INTEROP_DIR/clients/lt_seed.py" "$TORRENT" "$SEED_DIR" "$CLIENT_IP" "$CLIENT_PORT"
    CLIENT_PIDS=$PID_lt_seed
    LT_LOG=$WORK/logs/lt-seed.log
    WAIT_ALIVE="$CLIENT_PIDS" wait_for 60 "libtorrent checked the data and seeds" grep -q '^SEEDING' "$LT_LOG"
}

client_get() {
    start_bg lt-download "$LT_PYTHON" -u "$INTEROP_DIR/lt_download.py" "$1" "$OUT_DIR" "$CLIENT_IP" "$CLIENT_PORT" "$DL_TIMEOUT"
    CLIENT_PIDS=$PID_lt_download
    LT_LOG=$WORK/logs/lt-download.log
}

client_done() { exited_ok "$PID_lt_download"; }
client_progress() { grep progress "$WORK/logs/lt-download.log" | tail -n 1; }

# lt_peer_log WHAT : the first line of libtorrent's peer log that matches the extended regex
# WHAT on a connection with strand, or nothing. Its only other connections in a cell are
# with itself (the tracker lists it too): the ones with a peer at CLIENT_IP.
lt_peer_log() {
    grep -E "peer_log_alert: .* peer \[ [0-9.]+:[0-9]+ .*$1" "$LT_LOG" | grep -vF "peer [ $CLIENT_IP:" | head -n 1
}

client_witness() {
    local line said=""
    if [[ $MODE == encrypted ]]; then
        # Dialing out it logs `rc4` and `crypto select : [ rc4 ]`, answering `crypto select: rc4`.
        line=$(lt_peer_log '\*\*\* ENCRYPTION \[ +(rc4|crypto select: rc4|crypto select : \[ rc4 \]) \]')
        [[ -n $line ]] || die "libtorrent's peer log shows no '*** ENCRYPTION [ rc4 ]' with strand"
        [[ -z $(lt_peer_log '\*\*\* ENCRYPTION \[ +(plaintext|crypto select: plaintext|crypto select : \[ plaintext \]) \]') ]] \
            || die "libtorrent's peer log shows a plaintext stream with strand"
        log "witness: ${line#*peer_log_alert: }"
        said="libtorrent's peer log: \`*** ENCRYPTION [ rc4 ]\`"
    fi
    if (( LT_EXPECT_FAST )); then
        local -a want=('<== EXTENSIONS \[ [01]+ ext: .*FAST')
        local what fast="strand's FAST bit"
        if [[ $DIRECTION == gets ]]; then
            want+=('<== HAVE_ALL' '<== ALLOWED_FAST')
            fast+=", \`<== HAVE_ALL\`, \`<== ALLOWED_FAST\`"
        else
            want+=('==> HAVE_ALL')
            fast+="; libtorrent's \`==> HAVE_ALL\` to strand"
        fi
        for what in "${want[@]}"; do
            line=$(lt_peer_log "$what")
            [[ -n $line ]] || die "libtorrent's peer log shows no '$what' with strand"
            log "witness: ${line#*peer_log_alert: }"
        done
        said+="${said:+; }libtorrent's peer log (BEP 6): $fast"
    fi
    echo "$said"
}
