#!/usr/bin/env bash
# Creates (or reuses) widespec's virtual environment and prints its path.
# The environment is cached outside the clone, keyed on the dependency files, so reruns take seconds.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${WIDESPEC_CACHE:-$HOME/.cache/widespec}
# Keyed on the dependency lists (not the whole pyproject.toml: moving a module must not rebuild torch).
deps=$(python3 -c 'import json, sys, tomllib; p = tomllib.load(open(sys.argv[1], "rb"))["project"]; print(json.dumps([p["dependencies"], p.get("optional-dependencies", {})], sort_keys=True))' "$root/pyproject.toml")
key=$( (echo "$deps"; cat "$root/scripts/env.sh") | sha256sum | cut -c1-16)
venv="$cache/venv-$key"
if [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"
  mkdir -p "$cache"
  echo "widespec: building the environment in $venv (first time only; torch makes it several GB)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >&2
  # torch and torchvision are pinned as a matching pair in pyproject.toml (open_clip imports torchvision).
  "$venv/bin/pip" install -q "$root[test]" >&2
  "$venv/bin/pip" uninstall -q -y widespec >&2
  touch "$venv/.complete"
fi
# The project itself is installed editable from this clone on every call (seconds).
"$venv/bin/pip" install -q --no-deps --no-build-isolation -e "$root" >&2 2>/dev/null \
  || "$venv/bin/pip" install -q --no-deps -e "$root" >&2
echo "$venv"
