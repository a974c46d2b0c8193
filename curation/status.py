"""What a workspace holds: counts per record kind and status, pending work per stage, the latest runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from curation.contracts import RECORD_KINDS
from curation.generate.stage import pending_generate
from curation.store import INDEXED
from curation.workspace import Workspace


def pending_rewrite(ws: Workspace) -> int:
    """Base prompts (not blocked) that have fewer variants than the pass plans."""
    per_prompt = ws.config["rewriter"]["variants_per_prompt"]
    ok = ws.store.count("base_prompt", status="ok")
    return max(0, ok * per_prompt - ws.store.count("variant"))


# Pending-work estimators per stage, in pipeline order; each stage module adds its own.
PENDING: dict[str, Callable[[Workspace], int]] = {"rewrite": pending_rewrite}
PENDING["generate"] = pending_generate


def summary(ws: Workspace) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = {}
    for kind in RECORD_KINDS:
        column = next((c for c in ("status", "outcome", "label") if c in INDEXED[kind]), None)
        total = ws.store.count(kind)
        counts[kind] = {"total": total, **(ws.store.counts_by(kind, column) if column else {})}
    return {
        "workspace": str(ws.root),
        "schema_version": ws.store.schema_version,
        "records": counts,
        "pending": {stage: estimate(ws) for stage, estimate in PENDING.items()},
        "spend": ws.store.spend(),
        "runs": ws.store.runs(limit=10),
    }
