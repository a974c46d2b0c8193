"""Audit benchmark: `widespec audit` against the model's own batched forward pass (the limit) and against a
naive loop that scores each of a pair's four combinations on its own, same open_clip model, same pairs.

    python benchmarks/audit_bench.py [--bases 80] [--variants 3] [--image-size 128] [--batch-size 32] [--workers 0] [--repeat 3]

1. Builds a workspace of bases × variants pairs with real PNGs (variants of one base prompt share its render,
   as generation makes them) and a random-weight open_clip ViT (160 px, width 256, 4 layers: big enough that the
   forward pass, not Python, is the work), saved as a `local-dir:` model. Not timed.
2. Times, side by side in this process:
   - limit: every distinct image preprocessed beforehand (untimed), then only the model: one batched image
     forward over them, one text forward over the distinct prompts, the four scores of every pair;
   - widespec: the audit stage end to end (plan, DataLoader decode + preprocess, encoding each distinct image and
     prompt of a batch once, four scores, one transaction of records per batch) on a fresh copy of the workspace;
   - naive: per pair and per combination, open the image, preprocess it and score it under its prompt alone
     (`score(image, prompt)`: one image and one text forward each, as a script calling a reward model per
     combination does); nothing stored, in its favour.
Prints pairs per second for each and the ratios (goals: widespec >= 0.8 of the limit, >= 3x naive). The best of
`--repeat` runs of each side is compared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from curation.audit.models import LoadContext, RewardModel
    from curation.audit.population import AuditUnit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

BENCH_CLIP = {
    "embed_dim": 256,
    "vision_cfg": {"image_size": 160, "layers": 4, "width": 256, "patch_size": 16, "head_width": 64},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 256, "heads": 4, "layers": 4},
}


def architecture(name: str) -> dict[str, Any]:
    """`bench` (above) or any open_clip architecture name (ViT-H-14: HPSv2's and PickScore's size)."""
    if name == "bench":
        return BENCH_CLIP
    import open_clip

    config = open_clip.get_model_config(name)
    if config is None:
        raise SystemExit(f"--arch {name}: not an open_clip architecture")
    return config


def build_model(folder: Path, config: dict[str, Any]) -> None:
    import torch
    from open_clip.model import CLIP

    from curation.core.clip import save_local_dir

    torch.manual_seed(0)
    model_cfg = {k: v for k, v in config.items() if k in ("embed_dim", "vision_cfg", "text_cfg", "quick_gelu")}
    size = model_cfg["vision_cfg"]["image_size"]
    save_local_dir(CLIP(**model_cfg), model_cfg, folder, size if isinstance(size, int) else size[0])


def load(root: Path, spec_text: str) -> tuple[RewardModel, LoadContext]:
    from curation.audit.models import resolve
    from curation.audit.specs import parse_spec
    from curation.audit.stage import load_context
    from curation.core.workspace import open_workspace

    with open_workspace(root) as ws:
        context = load_context(ws)
        model = resolve(parse_spec("bench", spec_text, "bench"), context).load(context)
    return model, context


def units_of(root: Path) -> list[AuditUnit]:
    from curation.audit.population import workspace_units
    from curation.core.workspace import open_workspace

    with open_workspace(root) as ws:
        return workspace_units(ws)


def limit(root: Path, spec_text: str, batch_size: int) -> float:
    import numpy as np
    from PIL import Image

    model, _ = load(root, spec_text)
    units = units_of(root)
    paths = list(dict.fromkeys(p for u in units for p in (u.anti_image.path, u.base_image.path)))
    row = {p: i for i, p in enumerate(paths)}
    arrays = []
    for path in paths:
        with Image.open(path) as image:
            arrays.append(model.preprocess(image.convert("RGB")))
    texts = list(dict.fromkeys(t for u in units for t in (u.anti_prompt, u.base_prompt)))
    col = {t: i for i, t in enumerate(texts)}
    started = time.perf_counter()
    images = np.concatenate(
        [
            model.encode_images(model.preprocess.batch(arrays[i : i + batch_size]))
            for i in range(0, len(arrays), batch_size)
        ]
    )
    encoded = model.encode_texts(texts)
    anti = np.array([row[u.anti_image.path] for u in units])
    base = np.array([row[u.base_image.path] for u in units])
    at, bt = np.array([col[u.anti_prompt] for u in units]), np.array([col[u.base_prompt] for u in units])
    model.score_grid(
        images, encoded, np.stack([anti, base, anti, base], 1).ravel(), np.stack([at, at, bt, bt], 1).ravel()
    )
    return time.perf_counter() - started


def widespec(root: Path, spec_text: str) -> tuple[float, int]:
    from curation.audit.specs import parse_spec
    from curation.audit.stage import AuditOptions, audit
    from curation.core.workspace import open_workspace

    with open_workspace(root) as ws:
        started = time.perf_counter()
        result = audit(ws, AuditOptions(parse_spec("bench", spec_text, "bench")))
        seconds = time.perf_counter() - started
    return seconds, result.counts["pairs_audited"]


def naive(root: Path, spec_text: str) -> float:
    from PIL import Image

    model, _ = load(root, spec_text)
    units = units_of(root)
    started = time.perf_counter()
    for u in units:
        for image_path, prompt in (
            (u.anti_image.path, u.anti_prompt),
            (u.base_image.path, u.anti_prompt),
            (u.anti_image.path, u.base_prompt),
            (u.base_image.path, u.base_prompt),
        ):
            with Image.open(image_path) as image:
                pixels = model.preprocess.batch([model.preprocess(image.convert("RGB"))])
            model.score(pixels, [prompt])
    return time.perf_counter() - started


def run_bench(
    bases: int, variants: int, image_size: int, batch_size: int, workers: int, repeat: int, arch: str
) -> dict:
    """Every side's best time and pairs per second, and the ratios."""
    from benchmarks.score_bench import build_workspace
    from curation.core import config as config_module

    runs: dict[str, list[float]] = {"limit": [], "widespec": [], "naive": []}
    pairs = 0
    with tempfile.TemporaryDirectory(prefix="widespec-audit-bench-") as tmp:
        template = Path(tmp) / "ws"
        build_workspace(template, bases, variants, image_size)
        build_model(template / "bench-clip", architecture(arch))
        spec_text = "clip:local-dir:bench-clip"
        config_module.set_value(template / "widespec.toml", "audit", "batch_size", batch_size)
        config_module.set_value(template / "widespec.toml", "scorer", "num_workers", workers)
        load(template, spec_text)  # warm the model files and torch, outside every timing
        for attempt in range(max(1, repeat)):
            root = Path(tmp) / f"run-{attempt}"
            shutil.copytree(template, root)
            order = ["limit", "widespec", "naive"] if attempt % 2 == 0 else ["naive", "widespec", "limit"]
            for side in order:
                if side == "widespec":
                    seconds, pairs = widespec(root, spec_text)
                elif side == "limit":
                    seconds = limit(template, spec_text, batch_size)
                else:
                    seconds = naive(template, spec_text)
                runs[side].append(seconds)
            shutil.rmtree(root)
    best = {side: min(times) for side, times in runs.items()}
    rate = {side: pairs / seconds for side, seconds in best.items()}
    return {
        "pairs": pairs,
        "runs": runs,
        "best_s": best,
        "pairs_per_s": rate,
        "vs_limit": rate["widespec"] / rate["limit"],
        "vs_naive": rate["widespec"] / rate["naive"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bases", type=int, default=80)
    parser.add_argument("--variants", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--arch", default="bench", help="bench (small ViT) or an open_clip architecture name")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side; the best of each is compared")
    args = parser.parse_args()
    r = run_bench(args.bases, args.variants, args.image_size, args.batch_size, args.workers, args.repeat, args.arch)
    print(
        f"pairs: {r['pairs']} ({args.bases} base prompts x {args.variants} variants), {args.image_size}px PNGs, "
        f"random open_clip {args.arch}, batch {args.batch_size}, workers {args.workers}, best of {args.repeat}"
    )
    for side in ("limit", "widespec", "naive"):
        times = " ".join(f"{s:.2f}" for s in r["runs"][side])
        print(f"{side:9}: {r['best_s'][side]:.2f} s = {r['pairs_per_s'][side]:.1f} pairs/s (runs: {times} s)")
    print(f"widespec / limit: {r['vs_limit']:.2f} (goal >= 0.8)")
    print(f"widespec / naive: {r['vs_naive']:.1f}x (goal >= 3x)")


if __name__ == "__main__":
    main()
