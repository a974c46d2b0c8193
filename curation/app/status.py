"""What a workspace holds: counts per record kind and status, pending work per stage, the latest runs."""

from __future__ import annotations

from typing import Any

from curation.app.pipeline import pending_work
from curation.app.scope import out_of_scope
from curation.core.contracts import RECORD_KINDS
from curation.core.scorer import configured_scorer, truncated_texts
from curation.core.store import INDEXED
from curation.core.workspace import Workspace


def summary(ws: Workspace) -> dict[str, Any]:
    """Read-only: safe while another process writes (a run whose process died reads as interrupted)."""
    counts: dict[str, dict[str, int]] = {}
    for kind in RECORD_KINDS:
        column = next((c for c in ("status", "outcome", "label") if c in INDEXED[kind]), None)
        total = ws.store.count(kind)
        counts[kind] = {"total": total, **(ws.store.counts_by(kind, column) if column else {})}
    return {
        "workspace": str(ws.root),
        "schema_version": ws.store.schema_version,
        "records": counts,
        "pending": pending_work(ws),
        "not_released": out_of_scope(ws),
        "text_context": truncated_texts(ws.store, configured_scorer(ws.store, ws.settings.scorer)),
        "spend": ws.store.spend(),
        "runs": [with_cluster(run) for run in ws.store.runs(limit=10)],
    }


def with_cluster(run: dict[str, Any]) -> dict[str, Any]:
    """A ledger run with `executor`: "local", or the Ray cluster its compute ran on (kept with its counts)."""
    counts = dict(run["counts"])
    cluster = counts.pop("cluster", None)
    return {**run, "counts": counts, "executor": {"kind": "ray", **cluster} if cluster else {"kind": "local"}}


def executor_line(executor: dict[str, Any]) -> str:
    """`local`, or `ray: 2 nodes, 16 CPUs, 8 GPUs (gcs address, Ray 2.60.0)`."""
    if executor["kind"] != "ray":
        return "local"
    return (
        f"ray: {executor['nodes']} node{'s' if executor['nodes'] != 1 else ''}, {executor['cpus']:g} CPUs, "
        f"{executor['gpus']:g} GPUs ({executor['address']}, Ray {executor['ray']})"
    )
