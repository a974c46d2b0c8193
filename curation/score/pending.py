"""Pending work of the score stage, for `widespec status` (no model is loaded, torch is not imported)."""

from __future__ import annotations

from curation.core.pairs import iter_pairs
from curation.core.scorer import configured_scorer
from curation.core.workspace import Workspace


def pending_score(ws: Workspace) -> int:
    """Pairs with no fidelity score (ok or failed) from the configured scorer; every pair before `widespec score`
    has resolved it. `ScoreStage.pending` (curation.score.stage) is this."""
    scorer = configured_scorer(ws.store, ws.settings.scorer)
    scored = {row["subject_id"] for row in ws.store.iter("score", metric="fidelity") if row["scorer"] == scorer}
    return sum(1 for pair in iter_pairs(ws.store) if pair.id not in scored)
