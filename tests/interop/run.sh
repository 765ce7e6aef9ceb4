#!/usr/bin/env bash
# Run every interop case in turn and print `interop: N passed, M failed`.
# Exits non-zero if any case failed. Each case is a separate process with its own
# network namespace and temp dir, so one failing case does not affect the next.
#
# A case is a command line (run from the repository root); add new ones to CASES.
# Environment (DOWNLOADER, STRAND, DL_TIMEOUT, KEEP_WORK, ...) is passed through.
# ONLY=substring runs just the cases whose label contains it.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/../.."

# label | command
CASES=(
    "transmission_seeds|bash $HERE/transmission_seeds.sh"
    "transmission_downloads|bash $HERE/transmission_downloads.sh"
    "libtorrent_downloads|bash $HERE/libtorrent_downloads.sh"
    "udp_tracker|bash $HERE/udp_tracker.sh"
    "tier_fallback|bash $HERE/tier_fallback.sh"
    "tracker_stops|bash $HERE/tracker_stops.sh"
    "create_roundtrip|bash $HERE/create_roundtrip.sh"
    "kill9|bash $HERE/kill9.sh"
    "disk_full|bash $HERE/disk_full.sh"
    "magnet_from_transmission|bash $HERE/magnet_from_transmission.sh"
    "magnet_to_libtorrent|bash $HERE/magnet_to_libtorrent.sh"
    "dht_from_libtorrent|bash $HERE/dht_from_libtorrent.sh"
    "dht_to_libtorrent|bash $HERE/dht_to_libtorrent.sh"
    "hybrid_from_libtorrent|bash $HERE/hybrid_from_libtorrent.sh"
)

# Hard ceiling per case on top of the cases' own bounded waits.
CASE_TIMEOUT=${CASE_TIMEOUT:-900}

passed=0
failed=0
failed_names=()
for entry in "${CASES[@]}"; do
    label=${entry%%|*}
    cmd=${entry#*|}
    if [[ -n ${ONLY:-} && $label != *"$ONLY"* ]]; then
        continue
    fi
    echo "=== interop case: $label (downloader: ${DOWNLOADER:-strand}) ==="
    start=$(date +%s)
    # shellcheck disable=SC2086
    timeout --kill-after=30 "$CASE_TIMEOUT" $cmd </dev/null
    rc=$?
    secs=$(( $(date +%s) - start ))
    if (( rc == 0 )); then
        echo "=== PASS $label (${secs}s) ==="
        passed=$((passed + 1))
    else
        echo "=== FAIL $label (exit $rc, ${secs}s) ==="
        failed=$((failed + 1))
        failed_names+=("$label")
    fi
done

(( failed == 0 )) || echo "failed cases: ${failed_names[*]}"
echo "interop: $passed passed, $failed failed"
(( failed == 0 && passed > 0 ))
