"""Pending work of the text checks and the score stage, for `widespec status` (no model is loaded, torch is not
imported)."""

from __future__ import annotations

from curation.core.scorer import configured_scorer
from curation.core.workspace import Workspace


def pending_score(ws: Workspace) -> int:
    """Pairs with no fidelity score (ok or failed) from the configured scorer; every pair before `widespec score`
    has resolved it. `ScoreStage.pending` (curation.score.stage) is this."""
    scorer = configured_scorer(ws.store, ws.settings.scorer)
    scored = {row["subject_id"] for row in ws.store.iter("score", metric="fidelity") if row["scorer"] == scorer}
    return len(ws.store.ids("pair", status="current") - scored)


def pending_text_checks(ws: Workspace) -> int:
    """Ok variants without a text decision: the text checks have yet to score or decide them.
    `TextChecksStage.pending` (curation.score.text_checks) is this."""
    decided = {d["subject_id"] for d in ws.store.iter("decision", stage="text")}
    return len(ws.store.ids("variant", status="ok") - decided)
