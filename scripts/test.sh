#!/usr/bin/env bash
# Lint, type-check and test widespec in its own environment (built on first use).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$(bash "$root/scripts/env.sh")
cd "$root"
"$venv/bin/ruff" check curation annotation exports tests benchmarks
"$venv/bin/ruff" format --check curation annotation exports tests benchmarks
"$venv/bin/mypy" curation annotation exports
"$venv/bin/python" -m pytest -q "$@"
