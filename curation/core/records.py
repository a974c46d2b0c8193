"""One place that builds each record kind the stages share, so no stage spells a record by hand.

Metric names live here too: the score stage writes them, the filter, export and report read them.
"""

from __future__ import annotations

from typing import Any

from curation.core.ids import stable_id
from curation.core.store import Record, utc_now

PAIR_METRICS = ("fidelity", "content_kept", "direction")
TEXT_METRICS = ("text_distance", "text_sibling_cosine")
PROBE_PREFIX = "probe:"


def score_record(subject_id: str, metric: str, scorer: str, value: float | None, error: str | None = None) -> Record:
    """A score of `subject_id` (a pair or a variant); no value means a failed score with its error."""
    return {
        "id": stable_id("score", subject_id, metric, scorer),
        "subject_id": subject_id,
        "metric": metric,
        "value": None if value is None else round(float(value), 6),
        "scorer": scorer,
        "status": "ok" if value is not None else "failed",
        "error": error if value is None else None,
        "created_at": utc_now(),
    }


def decision_record(
    subject_id: str, stage: str, outcome: str, reasons: list[str], thresholds: dict[str, Any]
) -> Record:
    """A filter decision about a pair (`clip`) or a variant (`text`); one per subject and stage."""
    return {
        "id": stable_id("decision", subject_id, stage),
        "subject_id": subject_id,
        "stage": stage,
        "outcome": outcome,
        "reasons": reasons,
        "thresholds": thresholds,
        "created_at": utc_now(),
    }
