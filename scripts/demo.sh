#!/usr/bin/env bash
# The main job on the embedded defaults, offline: a workspace (default ./demo) built end to end with the
# lexicon rewriter, a tiny random-weight diffusion model and a tiny random-weight CLIP model, a human round
# pushed to a local Label Studio, a versioned dataset export, the HTML report and a reward-model audit of the
# release with tiny random-weight reward models.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$(bash "$root/scripts/env.sh")
bash "$root/annotation/server_venv.sh" >/dev/null   # Label Studio lives in its own virtual environment
workspace=${1:-demo}
export HF_HUB_OFFLINE=1
widespec="$venv/bin/widespec"
[ -f "$workspace/widespec.toml" ] || "$widespec" init "$workspace"
"$widespec" -w "$workspace" prompts add --builtin starter
"$widespec" -w "$workspace" run
"$widespec" -w "$workspace" audit --version 0.1.0 --models tiny-clip,tiny-pickscore,tiny-aesthetic,tiny-blip
"$widespec" -w "$workspace" annotate serve
echo
echo "Dataset: $workspace/exports/ (load_dataset(\"$workspace/exports/v0.1.0\")); report: $workspace/reports/report.html"
echo "Stop Label Studio with: $widespec -w $workspace annotate stop"
