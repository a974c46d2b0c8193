#!/usr/bin/env bash
# Create (or reuse) the isolated virtual environment that holds the Label Studio server.
#
#   bash annotation/server_venv.sh [VENV_DIR]
#
# label-studio 1.23.2 caps openai<2 while widespec needs openai 3.x, so the server can never share the project
# venv: it lives here, and widespec only talks to it over HTTP (label-studio-sdk in the project venv).
# Default VENV_DIR: ${WIDESPEC_LS_VENV:-$HOME/.cache/widespec/label-studio-1.23.2}.
# Python used to build it: ${WIDESPEC_LS_PYTHON:-python3} (3.11 verified).
# Idempotent: a venv whose bin/label-studio exists and whose label-studio is the pinned version is reused
# untouched (~0.1 s). A venv at VENV_DIR that does not match is rebuilt; a non-empty directory that is not a
# venv is refused. Concurrent callers serialise on VENV_DIR.lock.
# Cold install ~70 s on 2 cores (~40 s with a warm pip cache), ~1 GB on disk.
# Prints the venv path (and nothing else on stdout) when done; progress and errors go to stderr.
set -euo pipefail

LS_VERSION="1.23.2"
VENV_DIR="${1:-${WIDESPEC_LS_VENV:-$HOME/.cache/widespec/label-studio-${LS_VERSION}}}"
PYTHON="${WIDESPEC_LS_PYTHON:-python3}"

installed_version() {
    # Reading package metadata is instant; `label-studio --version` would import Django.
    [[ -x "$VENV_DIR/bin/label-studio" && -x "$VENV_DIR/bin/python" ]] || return 1
    "$VENV_DIR/bin/python" -c \
        'import importlib.metadata as m; print(m.version("label-studio"))' 2>/dev/null
}

if [[ "$(installed_version || true)" == "$LS_VERSION" ]]; then
    echo "$VENV_DIR"
    exit 0
fi

mkdir -p "$(dirname "$VENV_DIR")"
exec 9>"$VENV_DIR.lock"
flock 9
# Another caller may have finished the install while we waited for the lock.
if [[ "$(installed_version || true)" == "$LS_VERSION" ]]; then
    echo "$VENV_DIR"
    exit 0
fi

if [[ -e "$VENV_DIR" ]]; then
    if [[ -f "$VENV_DIR/pyvenv.cfg" ]]; then
        echo "server_venv: $VENV_DIR does not hold label-studio $LS_VERSION; rebuilding it" >&2
        rm -rf "$VENV_DIR"
    elif [[ -n "$(ls -A "$VENV_DIR" 2>/dev/null)" ]]; then
        echo "server_venv: $VENV_DIR exists, is not empty and is not a venv; refusing to touch it" >&2
        exit 1
    fi
fi

echo "server_venv: installing label-studio==$LS_VERSION into $VENV_DIR (about a minute)" >&2
"$PYTHON" -m venv "$VENV_DIR"
# -qq: pip still prints errors, but not the per-package warnings this machine's extra index config causes.
"$VENV_DIR/bin/python" -m pip install -qq --disable-pip-version-check --upgrade pip >&2
"$VENV_DIR/bin/python" -m pip install -qq --disable-pip-version-check "label-studio==$LS_VERSION" >&2

got="$(installed_version || true)"
if [[ "$got" != "$LS_VERSION" ]]; then
    echo "server_venv: expected label-studio $LS_VERSION in $VENV_DIR, found '${got:-nothing}'" >&2
    exit 1
fi
echo "$VENV_DIR"
