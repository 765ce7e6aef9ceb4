#!/usr/bin/env bash
# Install rqbit $RQBIT_VERSION (default 9.1.0, the version the interop matrix and the bench
# name) once into ~/.cache/strand-bench/cargo, outside any namespace (needs crates.io).
# Reruns reuse it; a cached binary of another version is replaced. Exits non-zero if the
# install fails: tests/interop/install-deps.sh then fails loudly, bench.sh leaves rqbit out.
set -uo pipefail
ROOT=${RQBIT_ROOT:-$HOME/.cache/strand-bench/cargo}
VERSION=${RQBIT_VERSION:-9.1.0}
if [[ -x $ROOT/bin/rqbit ]] && "$ROOT/bin/rqbit" --version 2>&1 | grep -qw "$VERSION"; then
    echo "[install-rqbit] present: $ROOT/bin/rqbit ($("$ROOT/bin/rqbit" --version 2>&1 | head -1))" >&2
    exit 0
fi
mkdir -p "$ROOT"
echo "[install-rqbit] cargo install rqbit --version $VERSION --locked --root $ROOT (about 7 minutes on 2 cores, once)" >&2
# A build dir of its own, kept: an install cut short (timeout, a killed session) resumes
# where it stopped instead of starting over.
if ! timeout 3600 cargo install rqbit --version "$VERSION" --locked --force --root "$ROOT" \
    --target-dir "$ROOT/build" >"$ROOT/install.log" 2>&1; then
    echo "[install-rqbit] FAILED (log: $ROOT/install.log)" >&2
    tail -n 20 "$ROOT/install.log" >&2
    exit 1
fi
rm -rf "$ROOT/build"
echo "[install-rqbit] installed $("$ROOT/bin/rqbit" --version 2>&1 | head -1)" >&2
