#!/usr/bin/env bash
# Install the third-party clients the interop cases use: Debian's packages, then rqbit
# 9.1.0 with cargo (bench/install-rqbit.sh: built once, cached in ~/.cache/strand-bench).
# Runs `apt-get update` only when a package is missing; a no-op when all is there.
# Must run OUTSIDE the test namespace (the namespace has no route to the mirrors).
# Fails (non-zero, with the reason) if anything cannot be installed.
set -euo pipefail

PACKAGES=(
    iproute2            # ip netns, nstat
    diffutils           # cmp
    curl                # qBittorrent's WebUI API
    python3             # torrent_tool.py
    opentracker
    mktorrent
    transmission-daemon
    transmission-cli    # transmission-remote
    aria2
    python3-libtorrent  # libtorrent 2.0 for /usr/bin/python3
    qbittorrent-nox
    rtorrent
    ctorrent
    deluged
    deluge-console      # not used by the driver (too slow), kept for debugging by hand
)
HERE=$(cd "$(dirname "$0")" && pwd)

log() { printf '[install-deps] %s\n' "$*" >&2; }

missing=()
for p in "${PACKAGES[@]}"; do
    if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true) != "install ok installed" ]]; then
        missing+=("$p")
    fi
done

install_rqbit() {
    bash "$HERE/../../bench/install-rqbit.sh" || { log "FAILED: rqbit (cargo install)"; exit 1; }
}

if (( ${#missing[@]} == 0 )); then
    log "all present: ${PACKAGES[*]}"
    install_rqbit
    exit 0
fi

[[ $(id -u) -eq 0 ]] || { log "need root to install: ${missing[*]}"; exit 1; }
log "missing: ${missing[*]}"

# transmission-daemon, deluged, qbittorrent-nox and opentracker ship services that their postinst would
# start in the HOST namespace (transmission with DHT on). Forbid service starts
# for the duration of the install, unless a policy is already in place.
POLICY=/usr/sbin/policy-rc.d
added_policy=0
if [[ ! -e $POLICY ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$POLICY"
    chmod 755 "$POLICY"
    added_policy=1
fi
cleanup() { if (( added_policy )); then rm -f "$POLICY"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
log "apt-get update"
timeout 600 apt-get update -q
log "apt-get install ${missing[*]}"
timeout 900 apt-get install -y -q --no-install-recommends "${missing[@]}" \
    || { log "FAILED: apt-get install ${missing[*]}"; exit 1; }
for p in "${missing[@]}"; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true) == "install ok installed" ]] \
        || { log "FAILED: $p is still not installed"; exit 1; }
done
log "packages done"
install_rqbit
