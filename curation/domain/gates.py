"""Accept / reject / review from thresholds: global minimums, per-dimension overrides and a review band.

A pair must meet the threshold of every taxonomy dimension it asks for, so a gate's threshold for a pair is the
strictest of its dimensions' values (a dimension without an override uses the global one). A value within
`review_margin` of a threshold is neither accepted nor rejected: the pair goes to human review first.
Everything here is pure: values in, a Decision out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from curation.core.records import PROBE_PREFIX
from curation.core.settings import FilterSettings

Outcome = Literal["accept", "reject", "review"]

# Metric family → its [filter] key; per-dimension tables use the same keys.
GATE_KEYS: dict[str, str] = {
    "fidelity": "min_fidelity",
    "content_kept": "min_content_kept",
    "direction": "min_direction",
    "probe": "min_probe",
}
# A threshold at (or below) the lowest value a metric can take switches its gate off.
METRIC_FLOOR: dict[str, float] = {"fidelity": -1.0, "content_kept": -1.0, "direction": -2.0, "probe": -2.0}


def family_of(metric: str) -> str:
    """`probe:blurry` → `probe`; other metrics are their own family."""
    return "probe" if metric.startswith(PROBE_PREFIX) else metric


@dataclass(frozen=True)
class Thresholds:
    """The [filter] section as the decision logic reads it."""

    minimums: dict[str, float]
    per_dimension: dict[str, dict[str, float]] = field(default_factory=dict)
    review_margin: float = 0.0
    min_text_distance: float = 0.0
    max_sibling_cosine: float = 1.0

    @classmethod
    def from_config(cls, section: FilterSettings) -> Thresholds:
        per_dimension = {
            dim: {family: float(values[key]) for family, key in GATE_KEYS.items() if key in values}
            for dim, values in section.dimensions.items()
        }
        return cls(
            minimums={family: float(getattr(section, key)) for family, key in GATE_KEYS.items()},
            per_dimension=per_dimension,
            review_margin=section.review_margin,
            min_text_distance=section.min_text_distance,
            max_sibling_cosine=section.max_variant_similarity,
        )

    def threshold(self, family: str, dimensions: Sequence[str]) -> tuple[float, str]:
        """The threshold a pair with these dimensions must meet (the strictest), and where it comes from."""
        candidates = [(self.minimums[family], "global")]
        for dim in dimensions:
            value = self.per_dimension.get(dim, {}).get(family)
            if value is not None:
                candidates.append((value, f"dimension {dim}"))
        if dimensions and all(family in self.per_dimension.get(d, {}) for d in dimensions):
            candidates.pop(0)  # every dimension overrides the global value
        return max(candidates, key=lambda c: c[0])


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reasons: list[str]
    thresholds: dict[str, Any]


@dataclass(frozen=True)
class MetricValue:
    """One score as the filter sees it: a value, or the error that left it missing."""

    value: float | None
    error: str | None = None


def gates_for(metrics: Mapping[str, MetricValue], dimensions: Sequence[str]) -> list[tuple[str, list[str]]]:
    """(metric, dimensions whose thresholds apply) for every gated metric present for the pair."""
    gates: list[tuple[str, list[str]]] = [(m, list(dimensions)) for m in ("fidelity", "content_kept", "direction")]
    gates += [(f"{PROBE_PREFIX}{d}", [d]) for d in dimensions]
    return [(metric, dims) for metric, dims in gates if metric in metrics]


def decide_pair(
    metrics: Mapping[str, MetricValue],
    dimensions: Sequence[str],
    thresholds: Thresholds,
    text_rejections: Sequence[str] = (),
) -> Decision:
    """The clip-stage decision for one pair; `text_rejections` are the reasons its variant failed text checks."""
    rejects: list[str] = [f"text: {reason}" for reason in text_rejections]
    reviews: list[str] = []
    passed: list[str] = []
    used: dict[str, Any] = {"review_margin": thresholds.review_margin}
    margin = thresholds.review_margin
    for metric, dims in gates_for(metrics, dimensions):
        family = family_of(metric)
        limit, source = thresholds.threshold(family, dims)
        if limit <= METRIC_FLOOR[family]:
            continue
        used[metric] = {"min": limit, "from": source}
        score = metrics[metric]
        if score.value is None or not math.isfinite(score.value):
            rejects.append(f"{metric} not scored: {score.error or f'value {score.value}'}")
        elif score.value < limit - margin:
            rejects.append(f"{metric} {score.value:.4f} < {limit:.4f} ({source})")
        elif score.value < limit + margin:
            reviews.append(f"{metric} {score.value:.4f} within ±{margin:g} of {limit:.4f} ({source})")
        else:
            passed.append(metric)
    if rejects:
        return Decision("reject", rejects + reviews, used)
    if reviews:
        return Decision("review", reviews, used)
    return Decision("accept", [f"passed {', '.join(passed)}" if passed else "no gate is switched on"], used)


def decide_text(distance: MetricValue, sibling_cosine: MetricValue | None, thresholds: Thresholds) -> Decision:
    """The text-stage decision for one variant, before any image exists. A check that failed (no value, or one
    that is not a finite number) rejects the variant: no failure passes a gate. No sibling score means the
    variant has no earlier sibling to compare with."""
    reasons: list[str] = []
    for name, score in (("text_distance", distance), ("text_sibling_cosine", sibling_cosine)):
        if score is not None and (score.value is None or not math.isfinite(score.value)):
            reasons.append(f"{name} not scored: {score.error or f'value {score.value}, not a finite number'}")
    value = distance.value
    if value is not None and math.isfinite(value) and value < thresholds.min_text_distance:
        reasons.append(
            f"variant text barely moved from the base prompt: distance {value:.4f} < {thresholds.min_text_distance:g}"
        )
    cosine = sibling_cosine.value if sibling_cosine is not None else None
    if cosine is not None and math.isfinite(cosine) and cosine > thresholds.max_sibling_cosine:
        reasons.append(
            f"near duplicate of an earlier variant of the same base prompt: cosine {cosine:.4f} > "
            f"{thresholds.max_sibling_cosine:g}"
        )
    used = {"min_text_distance": thresholds.min_text_distance, "max_variant_similarity": thresholds.max_sibling_cosine}
    if reasons:
        return Decision("reject", reasons, used)
    return Decision("accept", ["text moved from the base prompt and is no near duplicate"], used)
