"""What a workspace holds: counts per record kind and status, pending work per stage, the latest runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from annotation.progress import pending_pairs
from curation.core.contracts import RECORD_KINDS
from curation.core.store import INDEXED
from curation.core.workspace import Workspace
from curation.filter.stage import FILTER
from curation.generate.stage import pending_generate
from curation.rewrite.stage import pending_rewrite
from curation.score.pending import pending_score
from exports.pending import pending_export

# Pending-work estimators per stage, in pipeline order; each stage module adds its own.
PENDING: dict[str, Callable[[Workspace], int]] = {
    "rewrite": pending_rewrite,
    "generate": pending_generate,
    "score": pending_score,
    "filter": FILTER.pending,
    "annotate": pending_pairs,
    "export": pending_export,
}


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
