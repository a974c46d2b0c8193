"""Score benchmark: widespec's score stage against a naive scoring loop, same tiny open_clip model, same pairs.

    python benchmarks/score_bench.py [--bases 40] [--variants 3] [--image-size 96] [--batch-size 64] [--repeat 3]

1. Builds a workspace of bases × variants pairs with real PNGs (not timed); variants of one base prompt share
   the base render, as the generation stage makes them (same generator, seed and settings).
2. Times, side by side in this process, on the same pairs and the same model (builtin:tiny-clip):
   - widespec: `run_score` — text checks, DataLoader decode + preprocess, batched encoding of each distinct image
     and text once, metrics, float16 embeddings and score rows stored;
   - naive: per pair, open both images, preprocess and encode them one at a time, encode the variant text, the
     base text and every probe text again, compute the same metrics (and store nothing, in its favour).
Prints pair images per second for both (two images per pair) and the ratio. Each side runs `--repeat` times,
alternating which goes first, widespec each time on a fresh copy of the unscored workspace; the best time of each
side is compared (on a shared machine one slow run says more about the neighbours than about the code).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def build_workspace(root: Path, bases: int, variants: int, image_size: int) -> None:
    from benchmarks.synthetic_pairs import DIMENSIONS, add_pair, png
    from curation.core.console import settings
    from curation.core.workspace import init_workspace

    settings.quiet = True
    ws = init_workspace(root)
    for b in range(bases):
        for v in range(variants):
            dims = DIMENSIONS[(b + v) % len(DIMENSIONS)]
            add_pair(
                ws,
                f"base prompt number {b}: a small house by a lake",
                f"base prompt number {b}, variant {v}: a {' and '.join(dims)} small house by a lake",
                dims,
                index=v,
                seed=b + 1,
                base_image=png(10_000 + b, image_size),
                anti_image=png(20_000 + b * variants + v, image_size),
            )
    ws.close()


def naive_score(root: Path) -> tuple[int, float]:
    """The loop a first script would write; returns (pair images processed, seconds)."""
    import open_clip
    import torch
    from PIL import Image

    from curation.core.pairs import iter_pairs
    from curation.core.taxonomy import probe_texts
    from curation.core.workspace import open_workspace
    from curation.score import metrics
    from curation.score.stage import scorer_source

    ws = open_workspace(root)
    started = time.perf_counter()
    source = scorer_source(ws)
    model, _, preprocess = open_clip.create_model_and_transforms(source.open_clip_name)
    tokenizer = open_clip.get_tokenizer(source.open_clip_name)
    model.eval()
    probes = probe_texts(ws.settings.taxonomy.path, ws.root)
    scale = float(model.logit_scale.exp().item())

    def image(sha: str) -> torch.Tensor:
        with Image.open(ws.images.path_for(sha)) as im:
            return model.encode_image(preprocess(im.convert("RGB")).unsqueeze(0), normalize=True).numpy()

    def text(value: str) -> torch.Tensor:
        return model.encode_text(tokenizer([value]), normalize=True).numpy()

    n = 0
    results = []
    with torch.inference_mode():
        for pair in iter_pairs(ws.store):
            anti, base = image(pair.anti_render["image_sha256"]), image(pair.base_render["image_sha256"])
            vt, bt = text(pair.variant["text"]), text(pair.base["text"])
            row = {
                "fidelity": metrics.fidelity(anti, vt)[0],
                "content_kept": metrics.content_kept(anti, bt)[0],
                "direction": metrics.direction(anti, base, vt)[0],
            }
            for dim in pair.variant["dimensions"]:
                a, c = text(probes[dim][0]), text(probes[dim][1])
                row[f"probe:{dim}"] = metrics.probe(anti, base, a, c, scale)[0]
            results.append(row)
            n += 2
    seconds = time.perf_counter() - started
    ws.close()
    return n, seconds


def widespec_score(root: Path) -> tuple[int, float, int]:
    from curation.core.workspace import open_workspace
    from curation.score.stage import run_score

    ws = open_workspace(root)
    started = time.perf_counter()
    result = run_score(ws)
    seconds = time.perf_counter() - started
    ws.close()
    return 2 * result.pairs_scored, seconds, result.images_encoded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bases", type=int, default=40)
    parser.add_argument("--variants", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side; the best of each is compared")
    args = parser.parse_args()

    from curation.core import config as config_module
    from curation.core.workspace import open_workspace
    from curation.score.stage import scorer_source

    naive_runs: list[tuple[int, float]] = []
    ours_runs: list[tuple[int, float, int]] = []
    with tempfile.TemporaryDirectory(prefix="widespec-score-bench-") as tmp:
        template = Path(tmp) / "ws"
        build_workspace(template, args.bases, args.variants, args.image_size)
        config_module.set_value(template / "widespec.toml", "scorer", "batch_size", args.batch_size)
        config_module.set_value(template / "widespec.toml", "scorer", "num_workers", args.workers)
        with open_workspace(template) as ws:
            scorer_source(ws)  # build the tiny model once, outside both timings
        for attempt in range(max(1, args.repeat)):
            root = Path(tmp) / f"run-{attempt}"
            shutil.copytree(template, root)  # unscored: no score rows, no stored embeddings
            if attempt % 2:
                ours_runs.append(widespec_score(root))
                naive_runs.append(naive_score(template))
            else:
                naive_runs.append(naive_score(template))
                ours_runs.append(widespec_score(root))
    naive_images, naive_s = min(naive_runs, key=lambda run: run[1])
    ours_images, ours_s, distinct = min(ours_runs, key=lambda run: run[1])
    pairs = args.bases * args.variants
    naive_rate, ours_rate = naive_images / naive_s, ours_images / ours_s
    print(
        f"pairs: {pairs} ({args.bases} base prompts x {args.variants} variants), {args.image_size}px PNGs, "
        f"model builtin:tiny-clip, batch {args.batch_size}, workers {args.workers}, best of {len(ours_runs)}"
    )
    print(f"naive loop : {naive_images} pair images in {naive_s:.2f} s = {naive_rate:.1f} images/s")
    print(
        f"widespec   : {ours_images} pair images in {ours_s:.2f} s = {ours_rate:.1f} images/s "
        f"({distinct} distinct images encoded, results stored)"
    )
    print(
        "all runs   : naive "
        + " ".join(f"{s:.2f}" for _, s in naive_runs)
        + " s; widespec "
        + " ".join(f"{s:.2f}" for _, s, _ in ours_runs)
        + " s"
    )
    print(f"ratio      : {ours_rate / naive_rate:.1f}x (goal >= 4x)")


if __name__ == "__main__":
    main()
