#!/usr/bin/env bash
# Lint, type-check and test widespec in its own environment (built on first use).
#   scripts/test.sh [--fast] [pytest arguments]
# --fast: ruff and the tests not marked slow, for the edit-and-test loop (under a minute): no mypy, no Label
# Studio server environment, no Chromium. Without it: everything, as CI runs it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fast=false
args=()
for arg in "$@"; do
  if [ "$arg" = "--fast" ]; then fast=true; else args+=("$arg"); fi
done
[ "$fast" = true ] || bash "$root/scripts/system-deps.sh"
venv=$(bash "$root/scripts/env.sh")
cd "$root"
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .
if [ "$fast" = true ]; then
  exec "$venv/bin/python" -m pytest -q -m "not slow" ${args[@]+"${args[@]}"}
fi
"$venv/bin/mypy" curation annotation exports
bash "$root/annotation/server_venv.sh" >/dev/null  # the Label Studio server the annotation tests start
"$venv/bin/python" -m pytest -q "$@"
