"""Pending human work, for `widespec status` (kept apart from the SDK so status stays quick)."""

from __future__ import annotations

from curation.core.workspace import Workspace


def pending_pairs(ws: Workspace) -> int:
    """Pairs the CLIP filter accepted or sent to review that no round has judged yet."""
    subjects = {d["subject_id"] for d in ws.store.iter("decision", stage="clip", outcome=["accept", "review"])}
    judged = {v["subject_id"] for v in ws.store.iter("verdict") if v["label"] != "unresolved"}
    return len(subjects - judged)
