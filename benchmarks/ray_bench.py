"""Ray executor benchmark: `widespec generate` on the local executor against the Ray executor with one and two
actors, side by side in one run, tiny-sd on this machine, one torch thread per worker; and the driver's write
throughput (images per second it can commit), which bounds how many GPUs one driver can feed.

    python benchmarks/ray_bench.py [--prompts 16] [--variants 2] [--rounds 2]

Goals: Ray with 1 actor >= 0.9x the local executor's images/s (executor overhead <= 10%); Ray with 2 actors
>= 1.6x; driver writes >= 500 images/s. Wall-clock seconds, each side's best round; every side starts from a copy
of the same unrendered workspace; the actors' model loading is inside the timing (it is part of a run).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["OMP_NUM_THREADS"] = "1"  # the local side and each actor: one torch thread


def build(root: Path, prompts: int, variants: int) -> None:
    from benchmarks.generate_bench import add_variants
    from curation.core.config import set_value
    from curation.core.workspace import init_workspace
    from curation.generate.tiny import ensure_tiny_model
    from curation.prompts.importing import import_prompts

    ensure_tiny_model("tiny-sd", root.parent / "models")
    ws = init_workspace(root)
    import_prompts(ws, "builtin:starter", sample=prompts, seed=1)
    add_variants(ws, variants)
    for key, value in {
        "models": ["builtin:tiny-sd"],
        "models_dir": str(root.parent / "models"),
        "batch_size": 2,
    }.items():
        set_value(ws.config_path, "generator", key, value)
    set_value(ws.config_path, "generator", "batch_mode", "exact")
    ws.close()


def run(template: Path, target: Path, kind: str, workers: int) -> tuple[float, int]:
    from curation.core.config import set_value
    from curation.core.workspace import open_workspace
    from curation.generate.stage import generate

    shutil.copytree(template, target)
    for key, value in {"kind": kind, "workers": workers, "cpus_per_worker": 1, "batch_size": 4}.items():
        set_value(target / "widespec.toml", "executor", key, value)
    with open_workspace(target) as ws:
        started = time.perf_counter()
        result = generate(ws)
        return time.perf_counter() - started, result.ok


def driver_writes(root: Path, images: int) -> float:
    """Images per second the driver commits: PNG bytes plus a render-sized record per image, 32 per batch."""
    from benchmarks.synthetic_pairs import png
    from curation.core.executor import commit
    from curation.core.stage import Output
    from curation.core.workspace import init_workspace

    ws = init_workspace(root)
    pngs = [png(i, 64) for i in range(images)]
    started = time.perf_counter()
    for start in range(0, images, 32):
        batch = pngs[start : start + 32]
        commit(ws, Output(images=batch, counts=Counter(ok=len(batch))), None, Counter())
    seconds = time.perf_counter() - started
    ws.close()
    return images / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--variants", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import ray
    import torch

    from curation.core.console import settings
    from curation.generate.models import quiet_libraries

    quiet_libraries()
    settings.quiet = True
    torch.set_num_threads(1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    sides = {"local": ("local", 1), "ray x1": ("ray", 1), "ray x2": ("ray", 2)}
    times: dict[str, list[float]] = {side: [] for side in sides}
    images = 0
    with tempfile.TemporaryDirectory(prefix="widespec-ray-bench-") as tmp:
        template = Path(tmp) / "template"
        build(template, args.prompts, args.variants)
        run(template, Path(tmp) / "warm", "ray", 2)  # warm Ray's workers and the page cache, untimed
        for round_index in range(args.rounds):
            order = list(sides) if round_index % 2 == 0 else list(reversed(sides))
            for side in order:
                kind, workers = sides[side]
                seconds, images = run(template, Path(tmp) / f"{side.replace(' ', '')}-{round_index}", kind, workers)
                times[side].append(seconds)
        writes = driver_writes(Path(tmp) / "writes", 2000)
    ray.shutdown()
    rate = {side: images / min(t) for side, t in times.items()}
    print(f"{images} images (tiny-sd 64 px, batch_mode exact), 1 torch thread per worker, best of {args.rounds}")
    for side, t in times.items():
        print(f"{side:7}: {rate[side]:.2f} images/s (runs: {' '.join(f'{s:.1f}' for s in t)} s)")
    print(f"ray x1 / local: {rate['ray x1'] / rate['local']:.2f} (goal >= 0.9)")
    print(f"ray x2 / local: {rate['ray x2'] / rate['local']:.2f} (goal >= 1.6)")
    print(f"driver writes : {writes:.0f} images/s (goal >= 500)")


if __name__ == "__main__":
    main()
