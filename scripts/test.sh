#!/usr/bin/env bash
# Lint, type-check and test widespec in its own environment (built on first use).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/system-deps.sh"
venv=$(bash "$root/scripts/env.sh")
cd "$root"
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .
"$venv/bin/mypy" curation annotation exports
bash "$root/annotation/server_venv.sh" >/dev/null  # the Label Studio server the annotation tests start
"$venv/bin/python" -m pytest -q "$@"
