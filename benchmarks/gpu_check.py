"""GPU check: full-size FLUX.1-dev architecture (random weights, bfloat16), 1024², 28 steps, through widespec's
generate path against a plain per-image diffusers loop; prints seconds per image and GPU utilisation.

The public reference point is about 3 s per FLUX.1-dev image on an H100. Random weights make the images noise
(possibly NaN, which widespec records as failed renders): this times the arithmetic, not image quality.
Sized to finish in under 8 minutes on one H100 (~34 GB of weights in bfloat16). `--smoke` runs the same code
on the CPU with a tiny Flux so the script can be checked anywhere.

    python benchmarks/gpu_check.py                # on a GPU machine
    python benchmarks/gpu_check.py --smoke        # anywhere, seconds
    python benchmarks/gpu_check.py --check ray    # the Ray executor (one actor on the GPU) against the local one

The Ray check renders the same pairs with the local executor and with the Ray executor (a local Ray, one actor
holding the GPU), each building the model inside its timing (the actor also imports torch and diffusers there,
which this process has already done: a fixed ~10 s that `--pairs 8` or more makes small), and says whether the
images are byte-identical.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# FLUX.1-dev component configs (public model configs), built with random weights.
FLUX_DEV: dict[str, dict[str, Any]] = {
    "transformer": {
        "patch_size": 1,
        "in_channels": 64,
        "num_layers": 19,
        "num_single_layers": 38,
        "attention_head_dim": 128,
        "num_attention_heads": 24,
        "joint_attention_dim": 4096,
        "pooled_projection_dim": 768,
        "guidance_embeds": True,
        "axes_dims_rope": (16, 56, 56),
    },
    "vae": {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ("DownEncoderBlock2D",) * 4,
        "up_block_types": ("UpDecoderBlock2D",) * 4,
        "block_out_channels": (128, 256, 512, 512),
        "layers_per_block": 2,
        "latent_channels": 16,
        "norm_num_groups": 32,
        "sample_size": 1024,
        "scaling_factor": 0.3611,
        "shift_factor": 0.1159,
        "use_quant_conv": False,
        "use_post_quant_conv": False,
    },
    "clip": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "projection_dim": 768,
        "hidden_act": "quick_gelu",
    },
    "t5": {
        "vocab_size": 32128,
        "d_model": 4096,
        "d_kv": 64,
        "d_ff": 10240,
        "num_layers": 24,
        "num_heads": 64,
        "feed_forward_proj": "gated-gelu",
    },
    "scheduler": {
        "shift": 3.0,
        "use_dynamic_shifting": True,
        "base_shift": 0.5,
        "max_shift": 1.15,
        "base_image_seq_len": 256,
        "max_image_seq_len": 4096,
    },
}


# --- GPU utilisation ------------------------------------------------------------------------------------------


def _read_utilisation() -> Callable[[], float | None]:
    """A function returning the GPU's utilisation in percent now (pynvml via torch, else nvidia-smi), or None."""
    import torch

    if not torch.cuda.is_available():
        return lambda: None
    try:
        torch.cuda.utilization()

        return lambda: float(torch.cuda.utilization())
    except Exception:
        pass
    if shutil.which("nvidia-smi") is None:
        return lambda: None
    index = str(torch.cuda.current_device())

    def smi() -> float | None:
        out = subprocess.run(
            ["nvidia-smi", "-i", index, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return float(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None

    return smi


@contextmanager
def sampled_utilisation(every_s: float = 0.5) -> Iterator[list[float]]:
    """Sample GPU utilisation in a thread while the block runs; the list fills with percentages."""
    read, samples, stop = _read_utilisation(), [], threading.Event()

    def loop() -> None:
        while not stop.wait(every_s):
            value = read()
            if value is not None:
                samples.append(value)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()


def describe_utilisation(samples: list[float]) -> str:
    return f"{statistics.mean(samples):.0f}% mean over {len(samples)} samples" if samples else "n/a (no GPU reading)"


def synchronise() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


# --- generation: widespec's path vs a plain per-image loop ------------------------------------------------------


def build_flux(smoke: bool, device: str, dtype: Any) -> Any:
    """FLUX.1-dev's architecture (or the tiny one) with random weights, created directly on `device` in `dtype`."""
    import torch

    from curation.generate.tiny import TINY_FLUX, flux_pipeline

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            torch.manual_seed(0)
            pipeline = flux_pipeline(TINY_FLUX if smoke else FLUX_DEV)
    finally:
        torch.set_default_dtype(previous)
    pipeline.to(device=device, dtype=dtype)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def workspace_for(
    root: Path, pipeline: Any, *, pairs: int, steps: int, size: int, batch_size: int, batch_mode: str
) -> Any:
    """A workspace with `pairs` base prompts (one variant each) whose one model is `pipeline`'s folder."""
    from curation.core.config import set_value
    from curation.core.ids import content_hash, stable_id
    from curation.core.records import LEXICON_REWRITER, decision_record, variant_record
    from curation.core.workspace import init_workspace
    from curation.prompts.importing import import_prompts

    ws = init_workspace(root / f"ws-{batch_mode}")
    import_prompts(ws, "builtin:starter", sample=pairs, seed=3)
    taxonomy = {"name": "gpu-check", "version": "1", "hash": content_hash("gpu-check")}
    variants = [
        variant_record(
            stable_id("variant", base["id"], 0),
            base["id"],
            0,
            ["clarity"],
            "extreme",
            base["text"] + ", smeared, noisy, badly underexposed",
            rewriter=LEXICON_REWRITER,
            taxonomy=taxonomy,
        )
        for base in ws.store.iter("base_prompt")
    ]
    ws.store.put("variant", variants)
    ws.store.put(
        "decision", [decision_record(v["id"], "text", "accept", [], {}) for v in variants]
    )  # passed the text gate
    folder = root / "flux-architecture"
    pipeline.save_config(folder)  # model_index.json only: the weights stay in memory
    settings = {"models": [str(folder)], "steps": steps, "guidance": 3.5, "width": size, "height": size}
    runtime = {"batch_size": batch_size, "batch_mode": batch_mode, "dtype": "auto", "device": "auto"}
    for key, value in {**settings, **runtime}.items():
        set_value(ws.config_path, "generator", key, value)
    ws.reload_config()
    return ws


def plain_loop(pipeline: Any, items: list[tuple[str, int]], steps: int, size: int, out: Path) -> float:
    """One pipeline call per image, PIL output saved as PNG: what a script without widespec does."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    synchronise()
    started = time.perf_counter()
    for index, (prompt, seed) in enumerate(items):
        image = pipeline(
            prompt,
            generator=torch.Generator("cpu").manual_seed(seed),
            num_inference_steps=steps,
            guidance_scale=3.5,
            width=size,
            height=size,
        ).images[0]
        image.save(out / f"{index}.png")
    synchronise()
    return time.perf_counter() - started


def generate_check(args: argparse.Namespace) -> None:
    import torch

    from curation.core.console import settings
    from curation.generate.models import quiet_libraries
    from curation.generate.stage import generate

    quiet_libraries()
    settings.quiet = True
    device = "cpu" if args.smoke else "cuda"
    dtype = torch.float32 if args.smoke else torch.bfloat16
    steps, size = (2, 64) if args.smoke else (args.steps, args.size)
    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --smoke to check the script on the CPU")

    started = time.perf_counter()
    pipeline = build_flux(args.smoke, device, dtype)
    synchronise()
    params = sum(p.numel() for p in pipeline.transformer.parameters()) / 1e9
    print(
        f"built {'tiny' if args.smoke else 'FLUX.1-dev'} architecture on {device} in {dtype}: transformer {params * 1000:,.1f}M parameters, {time.perf_counter() - started:.1f} s"
    )

    with tempfile.TemporaryDirectory(prefix="widespec-gpu-check-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        plain_loop(pipeline, [("warm-up image", 0)], steps, size, root / "warm")
        print(f"warm-up image: {time.perf_counter() - started:.1f} s")
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        timings: dict[str, tuple[float, str, str]] = {}
        for mode in ("exact", "batched"):
            ws = workspace_for(
                root, pipeline, pairs=args.pairs, steps=steps, size=size, batch_size=args.batch_size, batch_mode=mode
            )
            synchronise()
            with sampled_utilisation() as util:
                started = time.perf_counter()
                result = generate(ws, loader=lambda located, **options: pipeline)
                synchronise()
                seconds = time.perf_counter() - started
            timings[mode] = (seconds, f"{result.ok} ok, {result.failed} failed", describe_utilisation(util))
            renders = list(ws.store.iter("render"))
            kinds = {"base": "base_prompt", "variant": "variant"}
            texts = [(ws.store.get(kinds[r["prompt_kind"]], r["prompt_id"]) or {}).get("text") for r in renders]
            jobs = [(str(text), int(r["seed"])) for text, r in zip(texts, renders, strict=True)]
            ws.close()
        with sampled_utilisation() as util:
            loop_s = plain_loop(pipeline, jobs, steps, size, root / "plain")
        timings["plain"] = (loop_s, "PIL images saved", describe_utilisation(util))

    n = len(jobs)
    print(f"images: {n} ({args.pairs} pairs), {size}x{size}, {steps} steps, batched mode batch_size {args.batch_size}")
    labels = {"exact": "widespec generate (exact)", "batched": "widespec generate (batched)", "plain": "plain loop"}
    for name, (seconds, outcome, utilisation) in timings.items():
        print(f"{labels[name]:28s} {seconds / n:7.2f} s/image ({outcome}), GPU util {utilisation}")
    for mode in ("exact", "batched"):
        print(f"ratio plain / widespec {mode}: {loop_s / timings[mode][0]:.2f}x")
    print("reference: ~3 s/image for FLUX.1-dev at 1024x1024, 28 steps on an H100")
    if torch.cuda.is_available():
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB on {torch.cuda.get_device_name()}")


# --- the Ray executor against the local one ---------------------------------------------------------------------


def random_flux(located: Any, *, device: str, dtype: str, smoke: bool, **options: Any) -> Any:
    """A generate loader (picklable, so Ray actors can use it): FLUX.1-dev's architecture (or the tiny one) with
    random weights built on `device`, instead of loading a folder's weights."""
    from curation.generate.device import torch_dtype

    return build_flux(smoke, device, torch_dtype(dtype))


def ray_check(args: argparse.Namespace) -> None:
    import sys
    from functools import partial

    import ray
    import torch

    from curation.core.config import set_value
    from curation.core.console import settings
    from curation.generate.models import quiet_libraries
    from curation.generate.stage import generate

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks.gpu_check import random_flux as loader  # by module name: the actors import it

    quiet_libraries()
    settings.quiet = True
    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --smoke to check the script on the CPU")
    steps, size = (2, 64) if args.smoke else (args.steps, args.size)
    ray.init(num_cpus=2 if args.smoke else None, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    timings: dict[str, tuple[float, str]] = {}
    images: dict[str, list[str]] = {}  # each run's image digests (its model folder, so its record ids, differ)
    with tempfile.TemporaryDirectory(prefix="widespec-gpu-check-ray-") as tmp:
        config_only = build_flux(True, "cpu", torch.float32)  # model_index.json for the workspace: no weights
        for kind in ("local", "ray"):
            ws = workspace_for(
                Path(tmp) / kind,
                config_only,
                pairs=args.pairs,
                steps=steps,
                size=size,
                batch_size=args.batch_size,
                batch_mode="exact",
            )
            executor = {"kind": kind, "workers": 1, "gpus_per_worker": 1, "cpus_per_worker": 2 if args.smoke else 4}
            for key, value in executor.items():
                set_value(ws.config_path, "executor", key, value)
            ws.reload_config()
            synchronise()
            started = time.perf_counter()
            result = generate(ws, loader=partial(loader, smoke=args.smoke))
            synchronise()
            timings[kind] = (time.perf_counter() - started, f"{result.ok} ok, {result.failed} failed")
            images[kind] = sorted(str(r["image_sha256"]) for r in ws.store.iter("render"))
            cluster = next(iter(ws.store.runs(stage="generate")))["counts"].get("cluster")
            ws.close()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # the local run's model is gone: give its memory to the actor
    ray.shutdown()
    n = len(images["local"])
    model = "tiny Flux" if args.smoke else "FLUX.1-dev architecture"
    print(f"{model}: {n} images ({args.pairs} pairs), {size}x{size}, {steps} steps, batch_mode exact, model load timed")
    for kind, (seconds, outcome) in timings.items():
        print(f"{kind + ' executor':15s} {seconds / n:7.2f} s/image, {seconds:.1f} s ({outcome})")
    print(f"ray / local images/s: {timings['local'][0] / timings['ray'][0]:.2f}; cluster: {cluster}")
    print(f"byte-identical images: {'yes' if images['ray'] == images['local'] else 'NO'}")


# --- CLIP ViT-L/14 images/s (scoring) --------------------------------------------------------------------------


def score_check(args: argparse.Namespace) -> None:
    """open_clip ViT-L/14 (random weights) images/s through widespec's encode path (see score_gpu_check.py)."""
    from score_gpu_check import REFERENCE_A100_IMAGES_PER_S, clip_gpu_check

    result = clip_gpu_check(smoke=args.smoke)
    print(
        f"{result['model']} on {result['device']}: encode {result['encode_images_per_s']} images/s, "
        f"end to end {result['end_to_end_images_per_s']} images/s = {result['end_to_end_vs_reference']}x the "
        f"A100 reference ({REFERENCE_A100_IMAGES_PER_S:.0f} images/s; goal 2x)"
    )


def audit_check(args: argparse.Namespace) -> None:
    """A reward-model audit at ViT-H-14 scale (HPSv2's and PickScore's size, random weights) against the
    model's own batched forward pass and a per-combination loop (see audit_bench.py)."""
    from audit_bench import run_bench

    arch, bases, size = ("bench", 8, 64) if args.smoke else ("ViT-H-14", 100, 512)
    r = run_bench(bases, 3, size, 64, 0 if args.smoke else 6, 1, arch)
    print(
        f"audit {arch}: {r['pairs']} pairs; limit {r['pairs_per_s']['limit']:.1f}, widespec "
        f"{r['pairs_per_s']['widespec']:.1f}, naive {r['pairs_per_s']['naive']:.1f} pairs/s; "
        f"widespec / limit {r['vs_limit']:.2f} (goal >= 0.8), widespec / naive {r['vs_naive']:.1f}x (goal >= 3x)"
    )


CHECKS: dict[str, Callable[[argparse.Namespace], None]] = {
    "generate": generate_check,
    "score": score_check,
    "audit": audit_check,
    "ray": ray_check,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny model on the CPU (checks the script, not the GPU)")
    parser.add_argument("--check", choices=sorted(CHECKS), action="append", help="which checks (default: all)")
    parser.add_argument("--pairs", type=int, default=2, help="pairs to render (two images each)")
    parser.add_argument("--batch-size", type=int, default=2, help="widespec generator.batch_size")
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    for name in args.check or sorted(CHECKS):
        print(f"== {name} ==")
        CHECKS[name](args)


if __name__ == "__main__":
    main()
