#!/usr/bin/env bash
# IM interoperability check (issue 6 §4): moves an infrastructure from a real
# IM 2.0.0 (Dummy cloud, temporary sqlite file, loopback port) to infralog and
# back, and compares what both answer. See interop.py.
#
#   IM_INTEROP_VENV   venv holding im==2.0.0 (default: target/im-interop-venv;
#                     created and installed on first use, reused afterwards)
#   INFRALOG_BIN      binary to test (default: target/release/infralog, built)
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${IM_INTEROP_VENV:-$root/target/im-interop-venv}"

has_im() {
    "$venv/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata, sys
sys.exit(0 if importlib.metadata.version("im") == "2.0.0" else 1)
PY
}

if ! has_im; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    installed=no
    for attempt in 1 2 3; do
        if timeout 900 "$venv/bin/pip" install --quiet --disable-pip-version-check "im==2.0.0"; then
            installed=yes
            break
        fi
        echo "pip install im==2.0.0 failed (attempt $attempt); retrying" >&2
        sleep $((attempt * 5))
    done
    if [ "$installed" != yes ] || ! has_im; then
        echo "cannot install im==2.0.0 into $venv" >&2
        exit 2
    fi
fi

if [ -z "${INFRALOG_BIN:-}" ]; then
    (cd "$root" && cargo build --release --quiet --bin infralog)
    INFRALOG_BIN="$root/target/release/infralog"
fi

exec timeout 600 python3 "$root/tests/im_interop/interop.py" \
    --im-python "$venv/bin/python" --infralog "$INFRALOG_BIN" "$@"
