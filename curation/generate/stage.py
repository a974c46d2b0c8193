"""The generate stage: render every pending base and variant image, batch by batch, resumable and shardable."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from curation.core.console import info, warn
from curation.core.errors import WidespecError
from curation.core.executor import execute
from curation.core.pairs import link_pairs, restatus_model
from curation.core.records import generator_key, render_record
from curation.core.stage import Output, Stage, StageResult, Work
from curation.core.store import Record, Store
from curation.core.workspace import Workspace
from curation.generate.device import DeviceChoice, choose_device, machine_devices
from curation.generate.engine import Outcome, render_batch
from curation.generate.models import (
    LocatedModel,
    ModelSpec,
    RenderSettings,
    load_pipeline,
    locate,
    locate_present,
    pipeline_classes,
    resolve_spec,
)
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
    waiting: str | None = None  # why nothing could be rendered (an earlier stage is waiting)

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
            "waiting": self.waiting,
        }


def model_specs(ws: Workspace) -> list[ModelSpec]:
    """The configured models, resolved (nothing loaded)."""
    cfg = ws.settings.generator
    specs = [resolve_spec(spec, cfg, ws.root) for spec in cfg.models]
    seen: set[str] = set()
    for spec in specs:
        if spec.model in seen:
            warn(f"generator.models lists {spec.model!r} twice; it is rendered once")
        seen.add(spec.model)
    return list({spec.model: spec for spec in specs}.values())


def text_accepted(ws: Workspace) -> set[str]:
    """Variants the text checks accepted: the only ones rendered (a variant they rejected, or have not checked
    yet, waits)."""
    return {d["subject_id"] for d in ws.store.iter("decision", stage="text") if d["outcome"] == "accept"}


def waiting_reason(ws: Workspace) -> str:
    """Why generate has nothing to render: which earlier stage is waiting, and how to run it."""
    ok = ws.store.ids("variant", status="ok")
    if not ok:
        return "nothing to render: no variants yet (run `widespec rewrite`)"
    unchecked = len(ok - {d["subject_id"] for d in ws.store.iter("decision", stage="text")})
    if unchecked:
        return f"nothing to render: {unchecked} variants wait for the text checks (run `widespec text-checks`)"
    return "nothing to render: the text checks rejected every variant (see `widespec filter` thresholds)"


@dataclass(frozen=True)
class RenderInputs:
    """What every model renders: the ok variants the text checks accepted, and their base prompts' texts."""

    variants: list[VariantRow]
    base_texts: dict[str, str]


def render_inputs(ws: Workspace) -> RenderInputs:
    """Read once per plan, whatever the number of models."""
    accepted = text_accepted(ws)
    variants = [
        VariantRow(v["id"], v["base_id"], v["text"])
        for v in ws.store.iter("variant", status="ok")
        if v["id"] in accepted
    ]
    needed = {v.base_id for v in variants}
    base_texts = {b["id"]: b["text"] for b in ws.store.iter("base_prompt", status="ok") if b["id"] in needed}
    return RenderInputs(variants, base_texts)


def planned_jobs(
    ws: Workspace, inputs: RenderInputs, generator: Mapping[str, Any], settings: RenderSettings
) -> list[RenderJob]:
    """Every render a model with this pixel identity must make for `inputs` (done or not)."""
    return plan_renders(
        generator=generator,
        settings=settings,
        base_texts=inputs.base_texts,
        variants=inputs.variants,
        project_seed=ws.settings.project.seed,
        seeds_per_pair=ws.settings.generator.seeds_per_pair,
    )


def generator_fields(
    located: LocatedModel, choice: DeviceChoice, batch_mode: str, batch_size: int, cpu_threads: int
) -> dict[str, Any]:
    """The render records' `generator`: the model, its resolved revision and everything else that changes pixels
    (on the CPU, the number of threads that compute them too)."""
    spec = located.spec
    return {
        "model": spec.model,
        "revision": located.revision,
        "preset": spec.preset.name if spec.preset else None,
        "license": located.license,
        "random_weights": spec.random_weights,
        **pipeline_classes(located.folder),
        "dtype": choice.dtype,
        "batch_mode": batch_mode,
        "batch_size": batch_size if batch_mode == "batched" else None,  # batched images depend on their batch
        "call_kwargs": dict(spec.settings.call_kwargs),
        "cpu_threads": cpu_threads if choice.device == "cpu" else None,
    }


def done_ids(ws: Workspace, *, retry_failed: bool) -> set[str]:
    """Ids of renders that need no work: all stored ones, or only the ok ones when failures are retried."""
    return ws.store.ids("render", status="ok") if retry_failed else ws.store.ids("render")


def pending_generate(ws: Workspace) -> int:
    """Renders the configured models still have to make (failed ones are not counted); nothing is downloaded or
    built: a model not on this machine yet has every render pending."""
    total, done = 0, done_ids(ws, retry_failed=False)
    cfg = ws.settings.generator
    inputs = render_inputs(ws)
    choice: DeviceChoice | None = None
    for spec in model_specs(ws):
        located = locate_present(spec, ws.resolve_path(cfg.models_dir), ws.store)
        if located is None:
            total += len(planned_jobs(ws, inputs, {"model": spec.model, "revision": None}, spec.settings))
            continue
        choice = choice or pick_device(ws, load_torch=False)
        generator = generator_fields(located, choice, cfg.batch_mode, cfg.batch_size, ws.settings.executor.cpu_threads)
        total += len(select_jobs(planned_jobs(ws, inputs, generator, spec.settings), done=done))
    return total


def _record(
    job: RenderJob, model: RenderModel, outcome: Outcome, sha256: str | None, runtime: dict[str, Any]
) -> Record:
    record = render_record(
        job.prompt_id,
        job.prompt_kind,
        generator=model.generator,
        seed=job.seed,
        settings=model.spec.settings.shared,
        image_sha256=sha256,
        seconds=outcome.seconds,
        error=outcome.error,
        runtime=runtime,
    )
    if record["id"] != job.render_id:  # the plan and the record must agree on what the image is
        raise WidespecError(f"render {job.render_id}: its record came out as {record['id']}; nothing was stored")
    return record


def _batches(jobs: list[RenderJob], size: int) -> Iterator[list[RenderJob]]:
    for start in range(0, len(jobs), size):
        yield jobs[start : start + size]


def pick_device(ws: Workspace, device: str | None = None, *, load_torch: bool = True) -> DeviceChoice:
    """generator.device / dtype (or `device` given for this run) resolved against the machine; `load_torch=False`
    (counting pending work) asks the driver instead of importing torch, when torch is not imported yet."""
    if load_torch:
        import torch  # noqa: F401  (what the machine offers is what torch sees)
    cuda, mps = machine_devices()
    cfg = ws.settings.generator
    return choose_device(device or cfg.device, cfg.dtype, cuda_devices=cuda, mps_available=mps)


@dataclass(frozen=True)
class GenerateOptions:
    shard: tuple[int, int] = (0, 1)
    limit: int | None = None
    retry_failed: bool = False
    device: str | None = None
    loader: PipelineLoader = load_pipeline
    models_done: frozenset[str] = frozenset()  # models already rendered in this call


@dataclass(frozen=True)
class RenderModel:
    """Generate's compute for one model: loads the pipeline once, renders batches, returns records and PNG bytes.

    It never touches the store: the executor writes the images (content-addressed) and the render records.
    """

    spec: ModelSpec
    located: LocatedModel
    choice: DeviceChoice
    generator: dict[str, Any]  # the render records' `generator`, pixel identity included
    batch_size: int
    batch_mode: str
    cpu_offload: bool
    compile_model: bool
    loader: PipelineLoader

    @contextmanager
    def opened(self) -> Iterator[Rendering]:
        import diffusers
        import torch

        if self.spec.random_weights:
            warn(
                f"{self.spec.model} has random weights: its images are noise for testing the pipeline, not research data"
            )
        info(
            f"loading {self.spec.model} (revision {self.located.revision[:19]}) on {self.choice.device} in {self.choice.dtype}"
        )
        pipeline = self.loader(
            self.located,
            device=self.choice.device,
            dtype=self.choice.dtype,
            cpu_offload=self.cpu_offload,
            compile_model=self.compile_model,
        )
        runtime = {
            "device": self.choice.device,
            "dtype": self.choice.dtype,
            "batch_size": self.batch_size,
            "batch_mode": self.batch_mode,
            "compile": self.compile_model,
            "torch": str(torch.__version__),
            "diffusers": str(diffusers.__version__),
        }
        yield Rendering(self, pipeline, runtime)


@dataclass
class Rendering:
    model: RenderModel
    pipeline: Any
    runtime: dict[str, Any]

    def run(self, units: Sequence[RenderJob]) -> Iterator[Output]:
        model = self.model
        for batch in _batches(list(units), model.batch_size):
            outcomes = render_batch(self.pipeline, batch, model.spec.settings, model.batch_mode)
            records, images = [], []
            for outcome in outcomes:
                sha256 = hashlib.sha256(outcome.png).hexdigest() if outcome.png is not None else None
                if outcome.png is not None:
                    images.append(outcome.png)
                records.append(_record(outcome.job, model, outcome, sha256, self.runtime))
            ok = len(images)
            yield Output(
                records={"render": records},
                images=images,
                counts=Counter({"ok": ok, "failed": len(outcomes) - ok}),
                advance=len(outcomes),
            )


class GenerateStage(Stage):
    """Base and variant renders of every configured model, each pair with the same seed and settings.

    One execution renders one model (the first with pending work); `generate()` runs it until none has any.
    """

    name = "generate"
    needs = ("variant", "base_prompt", "decision")
    makes = ("render", "pair")
    distributable = True

    def derive(self, store: Store, output: Output) -> dict[str, list[Record]]:
        """The pairs the output's renders complete, in the renders' own transaction."""
        return {"pair": link_pairs(store, output.records.get("render", []))}

    def pending(self, ws: Workspace) -> int:
        return pending_generate(ws)

    def co_writer(self, options: GenerateOptions | None = None) -> str | None:
        if options is None or options.shard[1] == 1:
            return None
        return f"shard {options.shard[0] + 1}/{options.shard[1]}"

    def plan(self, ws: Workspace, options: GenerateOptions | None = None) -> Work | None:
        options = options or GenerateOptions()
        cfg = ws.settings.generator
        done = done_ids(ws, retry_failed=options.retry_failed)
        inputs = render_inputs(ws)
        if not inputs.variants:  # no variant to render: no model to locate or download
            return Work([], details={"waiting": waiting_reason(ws)})
        restatused: list[Record] = []
        for spec in model_specs(ws):
            if spec.model in options.models_done:
                continue
            choice = pick_device(ws, options.device)
            located = locate(spec, ws.resolve_path(cfg.models_dir), ws.store)
            generator = generator_fields(
                located, choice, cfg.batch_mode, cfg.batch_size, ws.settings.executor.cpu_threads
            )
            # The configuration's generator identity stands: pairs of another one are superseded from now on.
            restatused += restatus_model(ws.store, spec.model, generator_key(generator, spec.settings.shared))
            jobs = select_jobs(
                planned_jobs(ws, inputs, generator, spec.settings), done=done, shard=options.shard, limit=options.limit
            )
            if not jobs:
                continue
            for message in choice.warnings:
                warn(message)
            compute = RenderModel(
                spec,
                located,
                choice,
                generator,
                cfg.batch_size,
                cfg.batch_mode,
                cfg.cpu_offload,
                cfg.compile,
                options.loader,
            )
            details = {"model": spec.model, "revision": located.revision, "random_weights": spec.random_weights}
            before = Output(records={"pair": restatused}) if restatused else None
            return Work(
                jobs, compute.opened, before=before, label=f"generate {spec.model}", unit="images", details=details
            )
        if restatused:
            return Work([], before=Output(records={"pair": restatused}), details={"restatused": len(restatused)})
        return None

    def summary(self, result: StageResult) -> str:
        rendered = f"{result.counts['ok']} images, {result.counts['failed']} failed"
        if "model" in result.details:
            return f"{result.details['model']}: {rendered}"
        if "waiting" in result.details:
            return str(result.details["waiting"])
        if "restatused" in result.details:
            return f"{result.details['restatused']} pairs re-statused (a generator identity changed)"
        return rendered


GENERATE = GenerateStage()


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
    started = time.perf_counter()
    remaining, models_done = limit, frozenset[str]()
    with ws.writing("shared" if shard[1] > 1 else "exclusive", GENERATE.co_writer(GenerateOptions(shard))):
        while remaining is None or remaining > 0:
            options = GenerateOptions(shard, remaining, retry_failed, device, loader, models_done)
            done = execute(ws, GENERATE, options)
            if done.nothing_to_do:
                result.waiting = done.details.get("waiting")
                break
            if "model" not in done.details:
                continue  # only pairs re-statused (a generator identity superseded): plan again
            made = done.counts["ok"] + done.counts["failed"]
            result.ok += done.counts["ok"]
            result.failed += done.counts["failed"]
            result.pending_before += made
            result.run_id = done.run_id
            result.models.append({**done.details, "ok": done.counts["ok"], "failed": done.counts["failed"]})
            models_done |= {done.details["model"]}
            if remaining is not None:
                remaining -= made
    result.seconds = time.perf_counter() - started
    return result
