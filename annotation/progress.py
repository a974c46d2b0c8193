"""Pending human work, for `widespec status` (kept apart from the SDK so status stays quick)."""

from __future__ import annotations

from annotation.gold import GOLD_PREFIX
from curation.core.workspace import Workspace


def pending_pairs(ws: Workspace) -> int:
    """Pairs the CLIP filter accepted or sent to review that no round has judged yet; pairs with a curator's gold
    answer are asked only as gold tasks (their answer is known) and wait for nothing."""
    subjects = {d["subject_id"] for d in ws.store.iter("decision", stage="clip", outcome=["accept", "review"])}
    judged = {v["subject_id"] for v in ws.store.iter("verdict") if v["label"] != "unresolved"}
    gold = {key.removeprefix(GOLD_PREFIX) for key in ws.store.state_keys(GOLD_PREFIX)}
    return len(subjects - judged - gold)
