"""Pending work of the score and filter stages, for `widespec status` (no model is loaded)."""

from __future__ import annotations

from curation.core.pairs import iter_pairs
from curation.core.workspace import Workspace


def pending_score(ws: Workspace) -> int:
    """Pairs with no fidelity score from any scorer yet."""
    scored = {row["subject_id"] for row in ws.store.iter("score", metric="fidelity")}
    return sum(1 for pair in iter_pairs(ws.store) if pair.id not in scored)
