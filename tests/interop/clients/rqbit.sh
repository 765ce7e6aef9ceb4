# shellcheck shell=bash
# Driver: rqbit 9.1.0, built once with `cargo install` (bench/install-rqbit.sh, run by
# install-deps.sh) into ~/.cache/strand-bench/cargo; RQBIT= overrides the binary.
# `rqbit download --exit-on-finish` exits 0 once complete (the "done" test); without it,
# given the data with --overwrite, it checks it and seeds until stopped. DHT (and its
# persistence), LSD and UPnP off by flags; uTP listening is off unless asked for
# (--experimental-enable-utp-listen), so it has no uTP peers here; rqbit 9.1.0 has no switch
# for PEX (ut_pex), which in a swarm of two has nothing to tell. No HTTP API, no session
# persistence. It announces from 127.0.0.1 whatever it listens on (a tracker lists a peer at
# the source address of its announce), so as a seeder it listens on every address.
RQBIT=${RQBIT:-$HOME/.cache/strand-bench/cargo/bin/rqbit}
CLIENT_REQUIRES=("$RQBIT")
SEEDS_MODES="plain magnet"
GETS_MODES="plain magnet"
declare -A NOT_APPLICABLE=(
    [seeds:encrypted]="rqbit 9.1.0 has no MSE/PE encryption (no such option)"
    [gets:encrypted]="rqbit 9.1.0 has no MSE/PE encryption (no such option)"
)

client_version() { "$RQBIT" --version 2>&1; }

# rqbit_args LISTEN_IP : the global options.
rqbit_args() {
    printf '%s\n' --disable-dht --disable-dht-persistence --disable-lsd --disable-upnp-port-forward \
        --listen-ip "$1" --listen-port "$CLIENT_PORT" -v info
}

client_seed() {
    local -a global
    mapfile -t global < <(rqbit_args 0.0.0.0)
    start_bg rqbit-seed "$RQBIT" "${global[@]}" download --disable-http-api --overwrite -o "$SEED_DIR" "$TORRENT"
    CLIENT_PIDS=$PID_rqbit_seed
}

client_get() {
    local -a global
    mapfile -t global < <(rqbit_args "$CLIENT_IP")
    start_bg rqbit-get "$RQBIT" "${global[@]}" download --disable-http-api --exit-on-finish -o "$OUT_DIR" "$1"
    CLIENT_PIDS=$PID_rqbit_get
}

client_done() { exited_ok "$PID_rqbit_get"; }
client_progress() { tail -n 1 "$WORK/logs/rqbit-get.log"; }
