"""The audit stage: one reward model scores every pending pair of a population, both images under both prompts.

`plan` locates the model's files (no weights loaded), lists the population and leaves out the pairs this
model has already audited with the same inputs; the compute loads the model once and yields one transaction
of audit records per batch. A failed image is a failed record with its error (rerun: tried again), never a
score. Audits are run on request (`widespec audit`), never by `widespec run`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from curation.audit.loading import Batch, batches, carry_images
from curation.audit.models import LoadContext, Resolved, RewardModel, resolve
from curation.audit.population import WORKSPACE, AuditUnit, ReleaseRef, placed_by, release_units, workspace_units
from curation.audit.specs import ModelSpec
from curation.core.clip import resolve_device
from curation.core.executor import execute
from curation.core.ids import stable_id
from curation.core.records import audit_record
from curation.core.stage import Output, Stage, StageResult, Work
from curation.core.store import Record, Store
from curation.core.workspace import Workspace

STAGE = "audit"


@dataclass(frozen=True)
class AuditOptions:
    spec: ModelSpec
    release: ReleaseRef | None = None
    deciders: tuple[str, ...] | None = None

    @property
    def population(self) -> str:
        return self.release.population if self.release else WORKSPACE


def population_units(ws: Workspace, options: AuditOptions) -> list[AuditUnit]:
    units = release_units(options.release) if options.release else workspace_units(ws)
    return placed_by(units, options.deciders)


def record_id(population: str, model: str, unit: AuditUnit) -> str:
    return stable_id("audit", population, model, unit.pair_id, unit.inputs)


def audits_of(store: Store, population: str, model: str, units: Sequence[AuditUnit]) -> list[Record | None]:
    """Each unit's stored audit by `model` with its current inputs (None: not audited); older records of
    changed pairs and of pairs no longer in the population are left out."""
    stored = {r["id"]: r for r in store.iter("audit", population=population, model=model)}
    return [stored.get(record_id(population, model, unit)) for unit in units]


def load_context(ws: Workspace) -> LoadContext:
    return LoadContext(ws.root, ws.runtime_dir / "models", resolve_device(ws.settings.audit.device))


@dataclass(frozen=True)
class Audit:
    """The compute: `resolved` loaded once, then every batch of units scored four ways."""

    resolved: Resolved
    context: LoadContext
    population: str
    batch_size: int
    workers: int

    @contextmanager
    def opened(self) -> Iterator[Scoring]:
        yield Scoring(self, self.resolved.load(self.context))


@dataclass
class Scoring:
    audit: Audit
    model: RewardModel

    def run(self, units: Sequence[AuditUnit]) -> Iterator[Output]:
        pin = self.audit.context.device.type == "cuda"
        for batch in batches(units, self.model.preprocess, self.audit.batch_size, self.audit.workers, pin):
            yield self.output(units, batch)

    def output(self, units: Sequence[AuditUnit], batch: Batch) -> Output:
        chosen = [units[i] for i in batch.indices]
        ok = [k for k, i in enumerate(batch.indices) if i not in batch.errors]
        scores = four_scores(self.model, batch, [chosen[k] for k in ok], ok)
        anti_tokens = self.model.count_tokens([u.anti_prompt for u in chosen])
        base_tokens = self.model.count_tokens([u.base_prompt for u in chosen])
        records: list[Record] = []
        counts: Counter[str] = Counter()
        by_position = dict(zip(ok, scores, strict=True))
        for k, unit in enumerate(chosen):
            row = by_position.get(k)
            record = audit_record(
                self.audit.population,
                self.model.id,
                unit.pair_id,
                None if row is None else [float(v) for v in row],
                inputs=unit.inputs,
                prompt_tokens=(anti_tokens[k], base_tokens[k]) if self.model.needs_prompt else (None, None),
                context=self.model.context if self.model.needs_prompt else None,
                error=batch.errors.get(batch.indices[k]),
            )
            counts["pairs_audited" if record["status"] == "ok" else "pairs_failed"] += 1
            counts["prompts_truncated"] += bool(record["truncated"])
            records.append(record)
        return Output(records={"audit": records}, counts=counts, advance=len(chosen))


def four_scores(model: RewardModel, batch: Batch, units: Sequence[AuditUnit], positions: Sequence[int]) -> np.ndarray:
    """An (n, 4) array in AUDIT_COMBINATIONS order for the units whose images loaded; texts encoded once each."""
    if not units or batch.pixels is None:
        return np.zeros((0, 4))
    images = model.encode_images(batch.pixels)
    texts: dict[str, int] = {}
    for unit in units:
        texts.setdefault(unit.anti_prompt, len(texts))
        texts.setdefault(unit.base_prompt, len(texts))
    encoded = model.encode_texts(list(texts)) if model.needs_prompt else None
    anti_img, base_img = batch.anti_rows[list(positions)], batch.base_rows[list(positions)]
    anti_txt = np.array([texts[u.anti_prompt] for u in units], dtype=np.int64)
    base_txt = np.array([texts[u.base_prompt] for u in units], dtype=np.int64)
    image_rows = np.stack([anti_img, base_img, anti_img, base_img], axis=1).reshape(-1)
    text_rows = np.stack([anti_txt, anti_txt, base_txt, base_txt], axis=1).reshape(-1)
    return model.score_grid(images, encoded, image_rows, text_rows).reshape(-1, 4)


class AuditStage(Stage):
    name = STAGE
    needs = ("pair", "release")
    makes = ("audit",)
    distributable = True

    def pending(self, ws: Workspace) -> int:
        return 0  # run on request, for the models and population the researcher names

    def plan(self, ws: Workspace, options: AuditOptions | None = None) -> Work | None:
        if options is None:
            raise ValueError("the audit stage needs AuditOptions (which model, which population)")
        context = load_context(ws)
        resolved = resolve(options.spec, context)
        population = options.population
        done = ws.store.ids("audit", population=population, model=resolved.id, status="ok")
        units = [u for u in population_units(ws, options) if record_id(population, resolved.id, u) not in done]
        section = ws.settings.audit
        compute = Audit(resolved, context, population, section.batch_size, ws.settings.scorer.num_workers)
        return Work(
            units=units,
            compute=compute.opened,
            portable=carry_images,
            label=f"audit {options.spec.name}",
            unit="pairs",
            details={"model": resolved.id, "population": population},
        )

    def summary(self, result: StageResult) -> str:
        shown = ", ".join(
            f"{k.replace('_', ' ')} {v}" for k, v in sorted(result.counts.items()) if v and k != "written"
        )
        return shown or "nothing to do"


def audit(ws: Workspace, options: AuditOptions) -> StageResult:
    """Run one reward model over the pending pairs of a population."""
    return execute(ws, AuditStage(), options)
