"""Accept / reject / review from global thresholds, per-dimension overrides and the review band."""

from __future__ import annotations

from typing import Any

from curation.core.config import defaults
from curation.core.settings import FilterSettings
from curation.domain.gates import MetricValue, Thresholds, decide_pair, decide_text


def thresholds(**overrides: object) -> Thresholds:
    # The thresholds these cases were written against (the shipped defaults leave the fidelity gate off).
    section = {**defaults()["filter"], "min_fidelity": 0.0, "review_margin": 0.01, **overrides}
    return Thresholds.from_config(FilterSettings.from_table(section))


def values(**scores: float | None) -> dict[str, MetricValue]:
    return {
        k.replace("__", ":"): MetricValue(v, None if v is not None else "image unreadable") for k, v in scores.items()
    }


def test_global_thresholds_and_review_band() -> None:
    limits = thresholds(min_fidelity=0.2, min_direction=0.0, review_margin=0.01)
    assert decide_pair(values(fidelity=0.25, direction=0.05), ["blurry"], limits).outcome == "accept"
    rejected = decide_pair(values(fidelity=0.15, direction=0.05), ["blurry"], limits)
    assert rejected.outcome == "reject"
    assert rejected.reasons == ["fidelity 0.1500 < 0.2000 (global)"]
    assert rejected.thresholds["fidelity"] == {"min": 0.2, "from": "global"}
    borderline = decide_pair(values(fidelity=0.205, direction=0.05), ["blurry"], limits)
    assert borderline.outcome == "review"
    assert "within ±0.01 of 0.2000" in borderline.reasons[0]
    # Just under the threshold but inside the margin is review too, not reject.
    assert decide_pair(values(fidelity=0.195, direction=0.05), ["blurry"], limits).outcome == "review"
    # One reject outweighs a review.
    assert decide_pair(values(fidelity=0.205, direction=-0.5), ["blurry"], limits).outcome == "reject"


def test_per_dimension_override_uses_the_strictest_dimension() -> None:
    limits = thresholds(
        min_fidelity=0.2,
        review_margin=0.0,
        dimensions={"blurry": {"min_fidelity": 0.1}, "noisy": {"min_fidelity": 0.3}},
    )
    assert limits.threshold("fidelity", ["blurry"]) == (0.1, "dimension blurry")
    assert decide_pair(values(fidelity=0.15, direction=1.0), ["blurry"], limits).outcome == "accept"
    # blurry alone would pass, noisy asks for more.
    decision = decide_pair(values(fidelity=0.25, direction=1.0), ["blurry", "noisy"], limits)
    assert decision.outcome == "reject" and "(dimension noisy)" in decision.reasons[0]
    # A dimension without an override still asks for the global value.
    assert limits.threshold("fidelity", ["blurry", "underexposed"]) == (0.2, "global")


def test_probe_gate_per_dimension_and_switched_off_gates() -> None:
    limits = thresholds(min_probe=0.0, min_direction=-2.0, review_margin=0.0, dimensions={"noisy": {"min_probe": 0.5}})
    scores = values(fidelity=0.3, direction=-1.5, probe__blurry=0.2, probe__noisy=0.4)
    decision = decide_pair(scores, ["blurry", "noisy"], limits)
    assert decision.outcome == "reject"
    assert decision.reasons == ["probe:noisy 0.4000 < 0.5000 (dimension noisy)"]
    # direction -1.5 is not judged: min_direction -2 switches the gate off.
    assert "direction" not in decision.thresholds


def test_a_missing_score_rejects_with_its_error() -> None:
    decision = decide_pair(values(fidelity=None, direction=0.1), ["blurry"], thresholds())
    assert decision.outcome == "reject"
    assert decision.reasons == ["fidelity not scored: image unreadable"]


def test_text_rejections_carry_into_the_pair_decision() -> None:
    decision = decide_pair(values(fidelity=0.9, direction=0.9), ["blurry"], thresholds(), ["near duplicate"])
    assert decision.outcome == "reject" and decision.reasons == ["text: near duplicate"]


def _text(distance: float | None, sibling: float | None = None, *, sibling_scored: bool = True) -> tuple[Any, ...]:
    return (
        MetricValue(distance, None if distance is not None else "the text encoder failed"),
        MetricValue(sibling) if sibling is not None else (MetricValue(None, "failed") if not sibling_scored else None),
    )


def test_text_checks() -> None:
    limits = thresholds(min_text_distance=0.05, max_variant_similarity=0.95)
    assert decide_text(*_text(0.2, 0.5), limits).outcome == "accept"
    assert decide_text(*_text(0.2), limits).outcome == "accept"  # no earlier sibling: nothing to compare with
    moved = decide_text(*_text(0.01), limits)
    assert moved.outcome == "reject" and "barely moved" in moved.reasons[0]
    duplicate = decide_text(*_text(0.2, 0.99), limits)
    assert duplicate.outcome == "reject" and "near duplicate" in duplicate.reasons[0]


def test_a_non_finite_value_never_passes_a_gate() -> None:
    nan = float("nan")
    decision = decide_pair(values(fidelity=nan, content_kept=0.5, direction=0.2), ["blurry"], thresholds())
    assert decision.outcome == "reject" and "fidelity not scored: value nan" in decision.reasons
    text = decide_text(*_text(float("inf")), thresholds())
    assert text.outcome == "reject" and "text_distance not scored: value inf, not a finite number" in text.reasons
    assert decide_text(*_text(0.5, nan), thresholds()).outcome == "reject"


def test_a_failed_text_check_never_passes_the_text_gate() -> None:
    """A text_distance stored as a failed score (no value) rejects its variant: it is never rendered."""
    failed = decide_text(*_text(None), thresholds())
    assert failed.outcome == "reject" and failed.reasons == ["text_distance not scored: the text encoder failed"]
    assert decide_text(*_text(0.5, sibling_scored=False), thresholds()).outcome == "reject"
