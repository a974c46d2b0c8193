"""The paper's reward-model figures from audit records, with bootstrap intervals and breakdowns (pure).

Under the anti-aesthetic prompt a reward model that follows the prompt ranks the anti image above the base image:
accuracy is the share of pairs where it does (ties counted and left out), F1 takes every pair's true answer as
"anti" (so F1 = 2·acc / (1 + acc), as in the paper's table), AUROC pools both images of every pair (anti = 1,
base = 0) and the mean delta is score(anti image) − score(base image). Under the base prompt the base image should
win: "wrong image wins" is the share of pairs where the anti image ranks first, the control.

Intervals are 95% percentile bootstraps over the pairs, except AUROC's, which resamples its 2n pooled images: a
pair drawn twice would double the weight of its own (anti against base) comparison and pull the interval off
the figure when anti images beat their own base images (the circular case). F1's interval is accuracy's mapped through
F1 = 2a / (1 + a) (increasing in a, so the percentiles map exactly); breakdown groups give AUROC without an
interval (a thousand resampled AUROCs per group would cost more than the audit).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from curation.core import measures
from curation.core.measures import Interval

BREAKDOWNS = ("generator", "family", "dimension", "intensity")


@dataclass(frozen=True)
class Scored:
    """One pair's four scores, in AUDIT_COMBINATIONS order (anti image / base image under the anti prompt, then
    under the base prompt)."""

    anti_anti: float
    base_anti: float
    anti_base: float
    base_base: float
    groups: Mapping[str, Sequence[str]]


@dataclass
class Figures:
    pairs: int
    ties: int
    accuracy: Interval | None
    f1: Interval | None
    auroc: Interval | None
    mean_delta: Interval | None
    wrong_image_wins: Interval | None
    control_ties: int


@dataclass
class ModelAudit:
    name: str
    model: str
    population: str
    pairs: int
    failed: int
    truncated: int
    circular: bool
    overall: Figures
    breakdowns: dict[str, dict[str, Figures]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rate(wins: NDArray[np.bool_], decided: NDArray[np.bool_]) -> measures.Statistic:
    def statistic(sample: NDArray[np.int64]) -> float | None:
        kept = decided[sample]
        return float(wins[sample][kept].mean()) if kept.any() else None

    return statistic


def _point(value: float | None) -> Interval | None:
    return None if value is None else Interval(value, None, None)


def figures(scored: Sequence[Scored], *, seed: int, rounds: int, auroc_interval: bool = True) -> Figures:
    """Every figure of one group of pairs, each with its 95% bootstrap interval over the pairs."""
    n = len(scored)
    aa = np.array([s.anti_anti for s in scored], dtype=np.float64)
    ba = np.array([s.base_anti for s in scored], dtype=np.float64)
    ab = np.array([s.anti_base for s in scored], dtype=np.float64)
    bb = np.array([s.base_base for s in scored], dtype=np.float64)
    delta, control = aa - ba, ab - bb
    decided, control_decided = delta != 0, control != 0

    pooled, labels = np.concatenate([aa, ba]), np.repeat([1, 0], n)

    def auroc(sample: NDArray[np.int64]) -> float | None:
        # Resampled as 2n images, not n pairs: a pair drawn twice would count its own comparison (anti against
        # its base image) twice as often as in the data, and bias the interval off the figure.
        return measures.auroc(pooled[sample], labels[sample])

    def mean_delta(sample: NDArray[np.int64]) -> float | None:
        return float(delta[sample].mean()) if len(sample) else None

    def interval(statistic: measures.Statistic) -> Interval | None:
        return measures.bootstrap(statistic, n, seed=seed, rounds=rounds) if n else None

    accuracy = interval(_rate(delta > 0, decided))
    f1 = None
    if accuracy is not None:
        point = measures.f1(np.ones(int(decided.sum())), delta[decided] > 0)
        f1 = Interval(point, *(None if a is None else 2 * a / (1 + a) for a in (accuracy.low, accuracy.high)))
    return Figures(
        pairs=n,
        ties=int((~decided).sum()),
        accuracy=accuracy,
        f1=f1,
        auroc=measures.bootstrap(auroc, 2 * n, seed=seed, rounds=rounds)
        if auroc_interval and n
        else _point(auroc(np.arange(2 * n))),
        mean_delta=interval(mean_delta),
        wrong_image_wins=interval(_rate(control > 0, control_decided)),
        control_ties=int((~control_decided).sum()),
    )


def grouped(scored: Sequence[Scored], facet: str) -> dict[str, list[Scored]]:
    """Pairs by group of `facet`; a pair with two dimensions counts in both."""
    groups: dict[str, list[Scored]] = defaultdict(list)
    for item in scored:
        for group in item.groups.get(facet, ()):
            groups[group].append(item)
    return dict(sorted(groups.items()))


def model_audit(
    name: str,
    model: str,
    population: str,
    scored: Sequence[Scored],
    *,
    failed: int,
    truncated: int,
    circular: bool,
    seed: int,
    rounds: int,
    breakdowns: bool = True,
) -> ModelAudit:
    return ModelAudit(
        name=name,
        model=model,
        population=population,
        pairs=len(scored),
        failed=failed,
        truncated=truncated,
        circular=circular,
        overall=figures(scored, seed=seed, rounds=rounds),
        breakdowns={
            facet: {
                group: figures(items, seed=seed, rounds=rounds, auroc_interval=False)
                for group, items in grouped(scored, facet).items()
            }
            for facet in (BREAKDOWNS if breakdowns else ())
        },
    )
