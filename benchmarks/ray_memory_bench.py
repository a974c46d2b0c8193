"""Ray driver memory benchmark: the driver's peak RSS scoring a small and a large workspace on the Ray executor,
with widespec's windowed dispatch and, side by side, the naive dispatch that reads every image into the driver.

    python benchmarks/ray_memory_bench.py [--sizes 2000 20000] [--image-size 96] [--workers 2] [--naive/--no-naive]

1. Builds a workspace of N unscored pairs (two noise PNGs of image-size² pixels each, which barely compress) for
   each size, in a child process (not measured); `[executor] kind = "ray"` with `workers` actors of one CPU, the
   default `batch_size` (16) and the default scorer (builtin:tiny-clip, random weights; 64 px input).
2. Runs `widespec score` on a copy of each workspace in a fresh driver process that starts its own local Ray
   (2 CPUs), once per dispatch:
   - windowed: widespec's Ray backend (a chunk's images are read as it is sent, at most two chunks per actor out);
   - naive: every pending chunk made portable (its images read) first, then handed to Ray Data as one dataset
     (`ray.data.from_items`), as widespec dispatched before;
   and prints each driver's peak RSS (its own ru_maxrss: the actors, raylet and object store processes are not
   counted; object-store pages the driver itself touched are), the pairs scored and the seconds.
3. Prints the ratio RSS(large)/RSS(small) for both dispatches. Goal: windowed <= 1.5.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
RSS_RATIO_GOAL = 1.5


def child_env() -> dict[str, str]:
    """This checkout's code first on the path of every child (and of the Ray workers it starts)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def build(root: Path, pairs: int, image_size: int, workers: int) -> None:
    from benchmarks.synthetic_releases import PairSpec, add_pairs
    from curation.core.config import set_value
    from curation.core.console import settings
    from curation.core.workspace import init_workspace

    settings.quiet = True
    ws = init_workspace(root)
    for start in range(0, pairs, 1000):
        specs = [PairSpec(clip=None, scored=False)] * min(1000, pairs - start)
        add_pairs(ws, specs, start=start, image_size=image_size)
    ws.close()
    for key, value in {"kind": "ray", "workers": workers, "cpus_per_worker": 1}.items():
        set_value(root / "widespec.toml", "executor", key, value)


class DatasetActor:
    """The naive dispatch's Ray Data actor: the stage's compute opened once, one chunk of units per batch."""

    def __init__(self, factory: bytes, threads: int) -> None:
        from curation.core.threads import cpu_threads

        self._compute = pickle.loads(factory)().__enter__()
        cpu_threads(threads).__enter__()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {"outputs": [pickle.dumps(list(self._compute.run(pickle.loads(c)))) for c in batch["units"]]}


def naive_run_on_ray(
    factory: Any, units: Sequence[Any], settings: Any, cluster: dict[str, Any], portable: Any = None
) -> Iterator[Any]:
    """Every chunk made portable (every pending image read into the driver), then one Ray Data dataset."""
    import ray.data

    from curation.core.ray_backend import pool_size

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    carry = portable or list
    size = settings.batch_size
    items = [{"units": pickle.dumps(list(carry(units[i : i + size])))} for i in range(0, len(units), size)]
    actors, gpus = pool_size(settings, cluster, len(items))
    dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        DatasetActor,
        fn_constructor_kwargs={"factory": pickle.dumps(factory), "threads": settings.cpu_threads},
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_gpus=gpus,
        num_cpus=settings.cpus_per_worker,
    )
    for row in dataset.iter_rows():
        yield from pickle.loads(row["outputs"])


def score_once(root: Path, dispatch: str) -> None:
    """The driver: `widespec score` on Ray with one dispatch; prints its figures as one JSON line."""
    import ray

    from curation.core import ray_backend
    from curation.core.console import settings
    from curation.core.workspace import open_workspace
    from curation.score.stage import run_score

    settings.quiet = True
    if dispatch == "naive":
        ray_backend.run_on_ray = naive_run_on_ray  # type: ignore[assignment]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open_workspace(root) as ws:
        started = time.perf_counter()
        result = run_score(ws)
        seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ray.shutdown()
    figures = {"peak_mb": peak, "floor_mb": floor, "pairs": result.pairs_scored, "seconds": seconds}
    print(json.dumps(figures))


def python(args: list[str]) -> str:
    done = subprocess.run([sys.executable, *args], env=child_env(), cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"python {' '.join(args)} exited {done.returncode}:\n{done.stderr[-4000:]}")
    return done.stdout


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*.png")) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=2, default=[2_000, 20_000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--naive", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--build", nargs=2, metavar=("ROOT", "PAIRS"), help=argparse.SUPPRESS)
    parser.add_argument("--score", nargs=2, metavar=("ROOT", "DISPATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        build(Path(args.build[0]), int(args.build[1]), args.image_size, args.workers)
        return
    if args.score:
        score_once(Path(args.score[0]), args.score[1])
        return

    dispatches = ["windowed", "naive"] if args.naive else ["windowed"]
    figures: dict[str, dict[int, dict[str, float]]] = {d: {} for d in dispatches}
    started = time.perf_counter()
    me = str(Path(__file__).resolve())
    with tempfile.TemporaryDirectory(prefix="widespec-ray-memory-bench-") as tmp:
        for n in sorted(args.sizes):
            template = Path(tmp) / f"ws-{n}"
            build_args = ["--build", str(template), str(n), "--image-size", str(args.image_size)]
            python([me, *build_args, "--workers", str(args.workers)])
            print(
                f"built {n:,} pairs: {2 * n:,} PNGs of {args.image_size}x{args.image_size}, "
                f"{folder_mb(template / 'images'):.0f} MB"
            )
            for dispatch in dispatches:
                copy = Path(tmp) / f"ws-{n}-{dispatch}"
                shutil.copytree(template, copy)
                figures[dispatch][n] = json.loads(python([me, "--score", str(copy), dispatch]).strip().splitlines()[-1])
                shutil.rmtree(copy)
                f = figures[dispatch][n]
                print(
                    f"  {dispatch:8} {n:>7,} pairs: driver peak RSS {f['peak_mb']:7.0f} MB "
                    f"(after imports and ray.init {f['floor_mb']:.0f} MB), {f['pairs']:,} pairs scored "
                    f"in {f['seconds']:.0f} s"
                )
            shutil.rmtree(template)
    small, large = sorted(args.sizes)
    print()
    print(f"{'dispatch':<10}{small:>10,}{large:>10,}   RSS ratio")
    for dispatch in dispatches:
        a, b = figures[dispatch][small]["peak_mb"], figures[dispatch][large]["peak_mb"]
        goal = f"   (goal <= {RSS_RATIO_GOAL}: {'met' if b / a <= RSS_RATIO_GOAL else 'MISSED'})"
        print(f"{dispatch:<10}{a:>8.0f}MB{b:>8.0f}MB{b / a:>9.2f}{goal if dispatch == 'windowed' else ''}")
    print(f"total {time.perf_counter() - started:.0f} s on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
