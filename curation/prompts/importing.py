"""Importing base prompts: normalise, dedup, sample and store in one transaction, through the executor."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.core.executor import execute
from curation.core.ids import normalise_text
from curation.core.records import base_prompt_id, base_prompt_record
from curation.core.stage import Output, Stage, Work
from curation.core.store import utc_now
from curation.core.workspace import Workspace
from curation.prompts.sources import SourceRow, read_builtin, read_file, read_hub


@dataclass
class ImportPlan:
    """What an import would do, decided without touching the store."""

    records: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0
    skipped: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)


def plan_import(
    rows: list[SourceRow],
    *,
    source: str,
    existing_ids: set[str],
    max_chars: int,
    category: str | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> ImportPlan:
    """Classify each row as new, duplicate, skipped (empty) or rejected (too long); sample reproducibly."""
    plan = ImportPlan()
    candidates: list[tuple[SourceRow, str]] = []
    seen: set[str] = set()
    for row in rows:
        text = normalise_text(row.text)
        if not text:
            plan.skipped += 1
        elif len(text) > max_chars:
            plan.rejected.append(
                {
                    "source": source,
                    "row": row.row,
                    "reason": f"longer than prompts.max_chars ({len(text)} > {max_chars})",
                    "text": text[:200],
                }
            )
        elif text in seen:
            plan.duplicates += 1
        else:
            seen.add(text)
            candidates.append((row, text))
    if sample is not None and sample < len(candidates):
        chosen = sorted(random.Random(seed).sample(range(len(candidates)), sample))
        candidates = [candidates[i] for i in chosen]
    now = utc_now()
    for row, text in candidates:
        record_id = base_prompt_id(text)
        if record_id in existing_ids:
            plan.duplicates += 1
            continue
        plan.records.append(
            base_prompt_record(text, source, row.row, category=category or row.category, created_at=now)
        )
    return plan


@dataclass(frozen=True)
class ImportResult:
    imported: int
    duplicates: int
    skipped: int
    rejected: int
    report: Path | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "rejected": self.rejected,
            "report": str(self.report) if self.report else None,
        }


def read_source(source: str, column: str, hub_timeout_s: float) -> tuple[str, list[SourceRow]]:
    """(source label, rows) for a file path, hf:// spec or builtin:NAME."""
    if source.startswith("hf://"):
        return source, read_hub(source, column, hub_timeout_s)
    if source.startswith("builtin:"):
        return source, read_builtin(source.removeprefix("builtin:"))
    return source, read_file(Path(source), column)


class PromptImport(Stage):
    """Reading a prompt source and storing its new base prompts: one transaction, under the workspace lock."""

    name = "prompts"
    makes = ("base_prompt",)

    def __init__(self, source: str, *, column: str | None, category: str | None, sample: int | None, seed: int | None):
        self.source, self.column, self.category, self.sample, self.seed = source, column, category, sample, seed
        self.rejected: list[dict[str, Any]] = []

    def pending(self, ws: Workspace) -> int:
        return 0  # an import's work is its source's, named on the command line

    def plan(self, ws: Workspace, options: Any = None) -> Work:
        settings = ws.settings.prompts
        label, rows = read_source(self.source, self.column or settings.column, settings.hub_timeout_s)
        plan = plan_import(
            rows,
            source=label,
            existing_ids=ws.store.ids("base_prompt"),  # read under the lock: nothing lands between this and the commit
            max_chars=settings.max_chars,
            category=self.category,
            sample=self.sample,
            seed=ws.settings.project.seed if self.seed is None else self.seed,
        )
        self.rejected = plan.rejected
        counts = {
            "imported": len(plan.records),
            "duplicates": plan.duplicates,
            "skipped": plan.skipped,
            "rejected": len(plan.rejected),
        }
        return Work([], before=Output(records={"base_prompt": plan.records}, counts=Counter(counts)))


def import_prompts(
    ws: Workspace,
    source: str,
    *,
    column: str | None = None,
    category: str | None = None,
    sample: int | None = None,
    seed: int | None = None,
) -> ImportResult:
    """Import base prompts from `source`; all rows are checked before one transaction stores them."""
    stage = PromptImport(source, column=column, category=category, sample=sample, seed=seed)
    result = execute(ws, stage)
    report = None
    if stage.rejected:
        ws.reports_dir.mkdir(exist_ok=True)
        report = ws.reports_dir / f"prompts-add-{result.run_id}-rejected.jsonl"
        report.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in stage.rejected), encoding="utf-8")
    counts = result.counts
    return ImportResult(counts["imported"], counts["duplicates"], counts["skipped"], counts["rejected"], report)
