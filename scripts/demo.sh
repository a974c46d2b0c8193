#!/usr/bin/env bash
# The main job on the embedded defaults, offline: a workspace in ./demo built end to end.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$(bash "$root/scripts/env.sh")
workspace=${1:-demo}
export HF_HUB_OFFLINE=1
[ -f "$workspace/widespec.toml" ] || "$venv/bin/widespec" init "$workspace"
"$venv/bin/widespec" -w "$workspace" prompts add --builtin starter
"$venv/bin/widespec" -w "$workspace" status
