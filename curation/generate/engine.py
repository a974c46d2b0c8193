"""Running a diffusers pipeline over a batch of render jobs, one `torch.Generator` per image.

Two batch modes. `exact` (the default) runs each image's denoising on its own, so an image's bytes never depend
on the batch size, its neighbours in a batch, or where a resumed run restarts: matrix kernels on CPUs and GPUs
pick different reduction orders for different batch shapes, so one generator per image alone does not make a
batched image independent of its batch. `batched` makes one pipeline call per batch, which can be faster for
small models on large GPUs, at the price of that independence.
A call that raises for a batch is retried image by image, so one failing prompt fails only its own render.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from curation.generate.images import check_image, encode_png
from curation.generate.models import RenderSettings
from curation.generate.plan import RenderJob


@dataclass(frozen=True)
class Outcome:
    job: RenderJob
    png: bytes | None
    error: str | None
    seconds: float


def describe_error(exc: BaseException) -> str:
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return "out of memory: try generator.cpu_offload, a smaller size, or a smaller batch_size in batched mode"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _call(pipeline: Any, jobs: Sequence[RenderJob], settings: RenderSettings) -> list[tuple[np.ndarray, bool]]:
    import torch

    with torch.inference_mode():
        output = pipeline(
            prompt=[job.text for job in jobs],
            generator=[torch.Generator("cpu").manual_seed(job.seed) for job in jobs],
            num_inference_steps=settings.steps,
            guidance_scale=settings.guidance,
            width=settings.width,
            height=settings.height,
            output_type="np",
            **dict(settings.call_kwargs),
        )
    images = np.asarray(output.images, dtype=np.float32)
    if len(images) != len(jobs):
        raise RuntimeError(f"the pipeline returned {len(images)} images for {len(jobs)} prompts")
    flags = getattr(output, "nsfw_content_detected", None) or [False] * len(jobs)
    return [(images[i], bool(flags[i])) for i in range(len(jobs))]


def _free_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _outcomes(jobs: Sequence[RenderJob], results: list[tuple[np.ndarray, bool]], seconds: float) -> list[Outcome]:
    outcomes = []
    for job, (image, flagged) in zip(jobs, results, strict=True):
        error = check_image(image, nsfw_flagged=flagged)
        outcomes.append(Outcome(job, None if error else encode_png(image), error, seconds / len(jobs)))
    return outcomes


def render_one(pipeline: Any, job: RenderJob, settings: RenderSettings) -> Outcome:
    started = time.perf_counter()
    try:
        results = _call(pipeline, [job], settings)
    except Exception as exc:
        _free_memory()
        return Outcome(job, None, describe_error(exc), time.perf_counter() - started)
    return _outcomes([job], results, time.perf_counter() - started)[0]


def render_batch(pipeline: Any, jobs: Sequence[RenderJob], settings: RenderSettings, mode: str) -> list[Outcome]:
    """Render `jobs` (which share `settings`); failures come back as outcomes with an error, never raise."""
    if mode == "exact" or len(jobs) == 1:
        return [render_one(pipeline, job, settings) for job in jobs]
    started = time.perf_counter()
    try:
        results = _call(pipeline, jobs, settings)
    except Exception:
        _free_memory()
        return [render_one(pipeline, job, settings) for job in jobs]
    return _outcomes(jobs, results, time.perf_counter() - started)
