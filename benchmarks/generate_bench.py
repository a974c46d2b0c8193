"""Benchmark: `widespec generate` against a plain per-image diffusers loop over the same pairs (CPU, tiny model).

Both sides load the same built-in tiny model folder with `DiffusionPipeline.from_pretrained` and write PNGs.
The plain loop is what a script without widespec does: for every pair, render the base prompt and the variant
prompt with the pair's seed and save both. widespec renders each base image once for all its variants, stores
images content-addressed and records every render in the workspace. A second baseline renders each distinct
image once (equal work), so the ratio that comes from engineering alone is visible too.

    python benchmarks/generate_bench.py [--model tiny-sd|tiny-flux] [--prompts 24] [--variants 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def add_variants(ws: object, per_base: int) -> int:
    from curation.core.ids import content_hash, stable_id
    from curation.core.records import LEXICON_REWRITER, decision_record, variant_record

    suffixes = [", blurry and noisy", ", in sickly clashing colours", ", harshly overexposed", ", empty and cold"]
    taxonomy = {"name": "bench", "version": "1", "hash": content_hash("bench")}
    records = [
        variant_record(
            stable_id("variant", base["id"], index),
            base["id"],
            index,
            ["clarity"],
            "moderate",
            base["text"] + suffixes[index % len(suffixes)],
            rewriter=LEXICON_REWRITER,
            taxonomy=taxonomy,
        )
        for base in ws.store.iter("base_prompt")  # type: ignore[attr-defined]
        for index in range(per_base)
    ]
    ws.store.put("decision", [decision_record(r["id"], "text", "accept", [], {}) for r in records])  # type: ignore[attr-defined]
    return int(ws.store.put("variant", records))  # type: ignore[attr-defined]


def plain_loop(
    folder: Path, items: list[tuple[str, int]], steps: int, guidance: float, size: int, out: Path, **extra: object
) -> float:
    """Load the pipeline and render each (prompt, seed) with its own call, saving a PNG per image."""
    import torch
    from diffusers import DiffusionPipeline

    started = time.process_time()
    pipeline = DiffusionPipeline.from_pretrained(folder, dtype=torch.float32)
    pipeline.set_progress_bar_config(disable=True)
    out.mkdir(parents=True, exist_ok=True)
    for index, (prompt, seed) in enumerate(items):
        image = pipeline(
            prompt,
            generator=torch.Generator("cpu").manual_seed(seed),
            num_inference_steps=steps,
            guidance_scale=guidance,
            width=size,
            height=size,
            **extra,
        ).images[0]
        image.save(out / f"{index}.png")
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-sd", choices=["tiny-sd", "tiny-flux"])
    parser.add_argument("--prompts", type=int, default=24, help="base prompts")
    parser.add_argument("--variants", type=int, default=2, help="variants per base prompt")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; each side keeps its best")
    args = parser.parse_args()

    import torch

    from curation.core.config import set_value
    from curation.core.pairs import iter_pairs
    from curation.core.workspace import init_workspace
    from curation.generate.models import quiet_libraries
    from curation.generate.presets import PRESETS
    from curation.generate.tiny import ensure_tiny_model
    from curation.prompts.importing import import_prompts

    quiet_libraries()
    # One thread and CPU time (not wall time): on a machine shared with other jobs, the CPU seconds a side
    # spends are what its work costs; wall time mostly measures the neighbours.
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="widespec-bench-") as tmp:
        root = Path(tmp)
        folder = ensure_tiny_model(args.model, root / "models")
        # The same call arguments widespec's preset passes (e.g. tiny-flux's short T5 sequence).
        extra = dict(PRESETS[f"builtin:{args.model}"].call_kwargs)

        def workspace(name: str, **generator: object) -> object:
            ws = init_workspace(root / name)
            import_prompts(ws, "builtin:starter", sample=args.prompts, seed=1)
            add_variants(ws, args.variants)
            for key, value in {
                "models": [f"builtin:{args.model}"],
                "models_dir": str(root / "models"),
                **generator,
            }.items():
                set_value(ws.config_path, "generator", key, value)
            ws.reload_config()
            return ws

        from curation.core.console import settings
        from curation.generate.stage import generate

        settings.quiet = True
        # Warm-up: one image, so no side pays first-call costs in the timings.
        plain_loop(folder, [("warm up", 0)], 2, 3.5, 64, root / "warm", **extra)
        times: dict[str, list[float]] = {"exact": [], "batched": [], "pairs": [], "distinct": []}
        # The sides alternate, round after round, and each keeps its best round: on a shared machine the
        # best of several rounds is the least noisy estimate of what the work itself costs.
        for round_index in range(args.rounds):
            exact_ws = workspace(f"exact-{round_index}", batch_size=4, batch_mode="exact")
            started = time.process_time()
            result = generate(exact_ws)  # type: ignore[arg-type]
            times["exact"].append(time.process_time() - started)
            pairs = list(iter_pairs(exact_ws.store))  # type: ignore[attr-defined]
            per_pair = [(t, p.anti_render["seed"]) for p in pairs for t in (p.base["text"], p.variant["text"])]
            distinct = list(dict.fromkeys(per_pair))
            times["pairs"].append(plain_loop(folder, per_pair, 2, 3.5, 64, root / f"pairs-{round_index}", **extra))
            batched_ws = workspace(f"batched-{round_index}", batch_size=4, batch_mode="batched")
            started = time.process_time()
            batched = generate(batched_ws)  # type: ignore[arg-type]
            times["batched"].append(time.process_time() - started)
            times["distinct"].append(
                plain_loop(folder, distinct, 2, 3.5, 64, root / f"distinct-{round_index}", **extra)
            )
        widespec_s, batched_s = min(times["exact"]), min(times["batched"])
        loop_pairs_s, loop_distinct_s = min(times["pairs"]), min(times["distinct"])

    print(f"model builtin:{args.model} (random weights), 64x64, 2 steps, 1 CPU thread, CPU seconds")
    print(f"best of {args.rounds} alternating rounds each")
    print(f"pairs {len(pairs)}: {len(per_pair)} images in a per-pair loop, {len(distinct)} distinct images")
    print(f"widespec generate (exact, batch 4):   {result.ok:3d} images {widespec_s:7.2f} s")
    print(f"widespec generate (batched, batch 4): {batched.ok:3d} images {batched_s:7.2f} s")
    print(f"plain loop over pairs:                {len(per_pair):3d} images {loop_pairs_s:7.2f} s")
    print(f"plain loop over distinct images:      {len(distinct):3d} images {loop_distinct_s:7.2f} s")
    print(f"ratio plain pair loop / widespec generate:            {loop_pairs_s / widespec_s:.2f}x (goal >= 1.0x)")
    print(f"ratio plain distinct loop / widespec generate:        {loop_distinct_s / widespec_s:.2f}x")
    print(f"ratio plain pair loop / widespec generate (batched):  {loop_pairs_s / batched_s:.2f}x")


if __name__ == "__main__":
    main()
