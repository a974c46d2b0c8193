"""Pending work of the judge stage, for `widespec status` (no client library is imported, no endpoint called)."""

from __future__ import annotations

from curation.core.judges import JudgeIdentity, current_judgments
from curation.core.workspace import Workspace


def judged(ws: Workspace, identity: JudgeIdentity, *, retry_failed: bool = False) -> set[str]:
    """Pair ids this judge has a judgment of (a failed or refused one counts only without `retry_failed`)."""
    found = current_judgments(ws.store, identity)
    redo = ("failed", "refused") if retry_failed else ()
    return {pair for pair, record in found.items() if record["status"] not in redo}


def pending_judge(ws: Workspace) -> int:
    """Current pairs the configured judge has not judged (0 while `judge.model` is empty).
    `JudgeStage.pending` (curation.judge.stage) is this."""
    if not ws.settings.judge.configured:
        return 0
    return len(ws.store.ids("pair", status="current") - judged(ws, JudgeIdentity.of(ws)))
