"""The generate stage: render every pending base and variant image, batch by batch, resumable and shardable."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from curation.core.config import config_hash
from curation.core.console import info, progress_bar, warn
from curation.core.store import Record, utc_now
from curation.core.workspace import Workspace
from curation.generate.device import DeviceChoice, choose_device
from curation.generate.engine import Outcome, render_batch
from curation.generate.models import LocatedModel, ModelSpec, load_pipeline, locate, resolve_spec
from curation.generate.plan import RenderJob, VariantRow, plan_renders, select_jobs

PipelineLoader = Callable[..., Any]


@dataclass
class GenerateResult:
    ok: int = 0
    failed: int = 0
    pending_before: int = 0
    seconds: float = 0.0
    models: list[dict[str, Any]] = field(default_factory=list)
    run_id: int | None = None

    @property
    def images_per_second(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "failed": self.failed,
            "pending_before": self.pending_before,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.images_per_second, 3),
            "models": self.models,
            "run_id": self.run_id,
        }


def model_specs(ws: Workspace) -> list[ModelSpec]:
    """The configured models, resolved (nothing loaded)."""
    cfg = ws.config["generator"]
    specs = [resolve_spec(spec, cfg, ws.root) for spec in cfg["models"]]
    seen: set[str] = set()
    for spec in specs:
        if spec.model in seen:
            warn(f"generator.models lists {spec.model!r} twice; it is rendered once")
        seen.add(spec.model)
    return list({spec.model: spec for spec in specs}.values())


def planned_jobs(ws: Workspace, spec: ModelSpec) -> list[RenderJob]:
    """Every render `spec` must make for the workspace's ok variants (done or not)."""
    variants = [VariantRow(v["id"], v["base_id"], v["text"]) for v in ws.store.iter("variant", status="ok")]
    needed = {v.base_id for v in variants}
    base_texts = {b["id"]: b["text"] for b in ws.store.iter("base_prompt", status="ok") if b["id"] in needed}
    return plan_renders(
        model=spec.model,
        settings=spec.settings,
        base_texts=base_texts,
        variants=variants,
        project_seed=int(ws.config["project"]["seed"]),
        seeds_per_pair=int(ws.config["generator"]["seeds_per_pair"]),
    )


def done_ids(ws: Workspace, *, retry_failed: bool) -> set[str]:
    """Ids of renders that need no work: all stored ones, or only the ok ones when failures are retried."""
    return ws.store.ids("render", status="ok") if retry_failed else ws.store.ids("render")


def pending_generate(ws: Workspace) -> int:
    """Renders the configured models still have to make (failed ones are not counted)."""
    total, done = 0, done_ids(ws, retry_failed=False)
    for spec in model_specs(ws):
        jobs = planned_jobs(ws, spec)
        total += len(select_jobs(jobs, done=done))
    return total


def _record(
    job: RenderJob, located: LocatedModel, outcome: Outcome, sha256: str | None, runtime: dict[str, Any]
) -> Record:
    spec = located.spec
    generator: dict[str, Any] = {
        "model": spec.model,
        "revision": located.revision,
        "preset": spec.preset.name if spec.preset else None,
        "license": spec.license,
        "random_weights": spec.random_weights,
    }
    return {
        "id": job.render_id,
        "prompt_id": job.prompt_id,
        "prompt_kind": job.prompt_kind,
        "generator": generator,
        "seed": job.seed,
        "steps": spec.settings.steps,
        "guidance": spec.settings.guidance,
        "width": spec.settings.width,
        "height": spec.settings.height,
        "image_sha256": sha256,
        "seconds": round(outcome.seconds, 4),
        "status": "ok" if outcome.png is not None else "failed",
        "error": outcome.error,
        "runtime": runtime,
        "created_at": utc_now(),
    }


def _batches(jobs: list[RenderJob], size: int) -> Iterator[list[RenderJob]]:
    for start in range(0, len(jobs), size):
        yield jobs[start : start + size]


def pick_device(ws: Workspace, device: str | None = None) -> DeviceChoice:
    """generator.device / dtype (or `device` given for this run) resolved against the machine."""
    import torch

    cfg = ws.config["generator"]
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return choose_device(
        device or cfg["device"], cfg["dtype"], cuda_devices=torch.cuda.device_count(), mps_available=mps
    )


def generate(
    ws: Workspace,
    *,
    shard: tuple[int, int] = (0, 1),
    limit: int | None = None,
    retry_failed: bool = False,
    device: str | None = None,
    loader: PipelineLoader = load_pipeline,
) -> GenerateResult:
    """Render what is missing for every configured model; each batch is stored in one transaction."""
    result = GenerateResult()
    plans: list[tuple[ModelSpec, list[RenderJob]]] = []
    remaining, done = limit, done_ids(ws, retry_failed=retry_failed)
    for spec in model_specs(ws):
        jobs = planned_jobs(ws, spec)
        chosen = select_jobs(jobs, done=done, shard=shard, limit=remaining)
        plans.append((spec, chosen))
        if remaining is not None:
            remaining -= len(chosen)
    result.pending_before = sum(len(jobs) for _, jobs in plans)
    run_id = ws.store.start_run("generate", config_hash(ws.config))
    result.run_id = run_id
    started = time.perf_counter()
    try:
        if result.pending_before:
            choice = pick_device(ws, device)
            for message in choice.warnings:
                warn(message)
            for spec, jobs in plans:
                if jobs:
                    _generate_model(ws, spec, jobs, choice, loader, result)
    except BaseException as exc:
        result.seconds = time.perf_counter() - started
        ws.store.finish_run(
            run_id, "failed", {"ok": result.ok, "failed": result.failed}, str(exc) or type(exc).__name__
        )
        raise
    result.seconds = time.perf_counter() - started
    ws.store.finish_run(run_id, "ok", {"ok": result.ok, "failed": result.failed})
    return result


def _generate_model(
    ws: Workspace,
    spec: ModelSpec,
    jobs: list[RenderJob],
    choice: DeviceChoice,
    loader: PipelineLoader,
    result: GenerateResult,
) -> None:
    import diffusers
    import torch

    cfg = ws.config["generator"]
    if spec.random_weights:
        warn(f"{spec.model} has random weights: its images are noise for testing the pipeline, not research data")
    located = locate(spec, ws.resolve_path(cfg["models_dir"]), ws.store)
    info(f"loading {spec.model} (revision {located.revision[:19]}) on {choice.device} in {choice.dtype}")
    pipeline = loader(
        located,
        device=choice.device,
        dtype=choice.dtype,
        cpu_offload=bool(cfg["cpu_offload"]),
        compile_model=bool(cfg["compile"]),
    )
    mode = str(cfg["batch_mode"])
    runtime = {
        "device": choice.device,
        "dtype": choice.dtype,
        "batch_size": int(cfg["batch_size"]),
        "batch_mode": mode,
        "compile": bool(cfg["compile"]),
        "torch": str(torch.__version__),
        "diffusers": str(diffusers.__version__),
    }
    ok = failed = 0
    with progress_bar(f"generate {spec.model}", total=len(jobs), unit="images") as bar:
        for batch in _batches(jobs, int(cfg["batch_size"])):
            outcomes = render_batch(pipeline, batch, spec.settings, mode)
            records = []
            for outcome in outcomes:
                sha256 = ws.images.put(outcome.png) if outcome.png is not None else None
                records.append(_record(outcome.job, located, outcome, sha256, runtime))
            with ws.store.transaction():
                ws.store.put("render", records, on_conflict="replace")
            batch_ok = sum(1 for o in outcomes if o.png is not None)
            ok, failed = ok + batch_ok, failed + len(outcomes) - batch_ok
            bar.advance(len(outcomes))
    result.ok += ok
    result.failed += failed
    result.models.append(
        {
            "model": spec.model,
            "revision": located.revision,
            "random_weights": spec.random_weights,
            "ok": ok,
            "failed": failed,
        }
    )
