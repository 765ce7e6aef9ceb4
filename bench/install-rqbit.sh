#!/usr/bin/env bash
# Install rqbit once into ~/.cache/strand-bench/cargo (outside any namespace: needs crates.io).
# Reruns reuse it. A failure is reported, and bench.sh then leaves rqbit out (RESULTS.md says so).
set -uo pipefail
ROOT=${RQBIT_ROOT:-$HOME/.cache/strand-bench/cargo}
if [[ -x $ROOT/bin/rqbit ]]; then
    echo "[install-rqbit] present: $ROOT/bin/rqbit ($("$ROOT/bin/rqbit" --version 2>&1 | head -1))" >&2
    exit 0
fi
mkdir -p "$ROOT"
echo "[install-rqbit] cargo install rqbit --locked --root $ROOT (about 7 minutes, once)" >&2
if ! timeout 1800 cargo install rqbit --locked --root "$ROOT" >"$ROOT/install.log" 2>&1; then
    echo "[install-rqbit] FAILED (log: $ROOT/install.log); the bench will run without rqbit" >&2
    tail -n 20 "$ROOT/install.log" >&2
    exit 1
fi
echo "[install-rqbit] installed $("$ROOT/bin/rqbit" --version 2>&1 | head -1)" >&2
