"""One pair, one fate: the rules of curation.domain.fate, pure (records in, a fate out)."""

from __future__ import annotations

from typing import Any

from curation.core.records import decision_record, verdict_record
from curation.domain.fate import Evidence, fate
from curation.domain.gates import MetricValue, Thresholds, decide_pair

PAIR = "0" * 16
VARIANT = "1" * 16


def clip(outcome: str, reasons: list[str] | None = None) -> dict[str, Any]:
    return decision_record(PAIR, "clip", outcome, reasons or [], {})


def text(outcome: str) -> dict[str, Any]:
    return decision_record(VARIANT, "text", outcome, ["barely moved"] if outcome == "reject" else [], {})


def verdict(label: str, round_number: int = 1) -> dict[str, Any]:
    votes = {label: 2} if label in ("anti", "base", "tie") else {"anti": 1, "base": 1}
    return verdict_record(PAIR, round_number, {"label": label, "votes": votes, "agreement": 1.0, "annotators": 2})


def judgment(label: str, status: str = "ok") -> dict[str, Any]:
    return {"id": "2" * 16, "subject_id": PAIR, "status": status, "label": label}


def where(evidence: Evidence, mode: str) -> tuple[str | None, str | None]:
    found = fate(evidence, mode)  # type: ignore[arg-type]
    return found.placement, found.decided_by


def test_placement_and_who_decided() -> None:
    assert where(Evidence([clip("accept")]), "accepted") == ("train", "clip")
    assert where(Evidence([clip("accept")]), "human") == (None, None)
    assert where(Evidence([clip("reject")]), "human") == ("hard_negative", "clip")
    assert where(Evidence([clip("review")]), "accepted") == (None, None)
    assert where(Evidence([]), "accepted") == (None, None)
    # The verdict that stands (the latest round's) overrides CLIP; an unresolved one decides nothing.
    assert where(Evidence([clip("reject")], [verdict("anti")]), "human") == ("train", "human")
    assert where(Evidence([clip("accept")], [verdict("tie")]), "accepted") == ("hard_negative", "human")
    assert where(Evidence([clip("accept")], [verdict("base"), verdict("anti", 2)]), "human") == ("train", "human")
    assert where(Evidence([clip("accept")], [verdict("anti"), verdict("unresolved", 2)]), "human") == (None, None)
    assert where(Evidence([clip("accept")], [verdict("anti"), verdict("unresolved", 2)]), "accepted") == (
        "train",
        "clip",
    )
    # A text rejection is final: the pair goes nowhere, whatever else was said about it.
    assert where(Evidence([clip("accept"), text("reject")], [verdict("anti")]), "accepted") == (None, None)
    assert fate(Evidence([text("reject")]), "human").by == "text"
    # The judge places a pair only in judged mode, only where CLIP did not reject, and only in every order.
    assert where(Evidence([clip("accept")], [], judgment("anti")), "judged") == ("train", "judge")
    assert where(Evidence([clip("review")], [], judgment("anti")), "judged") == ("train", "judge")
    assert where(Evidence([clip("reject")], [], judgment("anti")), "judged") == ("hard_negative", "clip")
    assert where(Evidence([clip("accept")], [], judgment("inconsistent")), "judged") == (None, None)
    assert where(Evidence([clip("accept")], [], judgment("anti", "failed")), "judged") == (None, None)
    assert where(Evidence([clip("accept")], [], judgment("anti")), "accepted") == ("train", "clip")


def _clip_decision(**values: float | None) -> dict[str, Any]:
    """A clip decision as the filter makes it from these metric values (None: the score failed)."""
    limits = Thresholds({"fidelity": 0.2, "content_kept": 0.1, "direction": 0.0, "probe": -2.0})
    metrics = {m: MetricValue(v, None if v is not None else "the scorer failed") for m, v in values.items()}
    decision = decide_pair(metrics, ["blurry"], limits)
    return decision_record(PAIR, "clip", decision.outcome, decision.reasons, decision.thresholds)


def test_a_preference_label_only_from_evidence_that_compares_the_images() -> None:
    good = {"fidelity": 0.3, "content_kept": 0.3, "direction": 0.05}
    # The anti image follows the anti prompt less well than the base image: a real preference for the base.
    assert fate(Evidence([_clip_decision(**(good | {"direction": -0.05}))]), "human").chosen == "base"
    # A failed score, a lost subject or low fidelity rejects the pair (a hard negative) but says nothing about
    # which image follows the prompt better: no preference label.
    for broken in ({"direction": None}, {"content_kept": 0.01}, {"fidelity": 0.05}):
        found = fate(Evidence([_clip_decision(**(good | broken))]), "human")
        assert (found.placement, found.chosen) == ("hard_negative", None), broken
    # Humans: anti and base verdicts compare the images, a tie does not.
    assert fate(Evidence([], [verdict("base")]), "human").chosen == "base"
    assert fate(Evidence([], [verdict("tie")]), "human").chosen is None
    assert fate(Evidence([], [verdict("anti")]), "human").chosen == "anti"
    assert fate(Evidence([clip("accept")], [], judgment("anti")), "judged").chosen == "anti"
