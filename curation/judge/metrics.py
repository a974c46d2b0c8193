"""The judge's figures: agreement with the human verdicts, position bias, and each generator's success rate (pure).

Labels are ordinal, in `LABELS` order: `base` (the base image follows the anti-aesthetic prompt better) < `tie` <
`anti` (the anti image does). A pair's judge verdict is the choice both A/B orders agreed on; a choice that flipped
with the order is inconsistent and is no verdict. A human label `unresolved` (or none) is no verdict either.
Agreement with humans reads an inconsistent pair as a tie (`JudgedPair.ordinal`), as the release gate does:
leaving those pairs out would flatter a position-biased judge.

Agreement is measured on the pairs that have both verdicts: accuracy, Cohen's kappa and quadratic-weighted kappa
(a base/anti disagreement weighs four times a disagreement with a tie), each with a 95% percentile bootstrap
interval over those pairs, and the confusion matrix. Shares of counts (flip rate, success rate) carry Wilson
intervals instead: they need no resampling and stay sound near 0 and 1.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from curation.core import measures
from curation.core.measures import BOOTSTRAP_ROUNDS, Interval

LABELS = ("base", "tie", "anti")
UNRESOLVED = "unresolved"
Facet = Literal["dimension", "intensity", "generator"]


@dataclass(frozen=True)
class JudgedPair:
    """One pair as the figures see it.

    `judge`: the agreed judge verdict (a label of `LABELS`), None without one (inconsistent, failed or not judged).
    `human`: the resolved human label, None (or `unresolved`) without one.
    `consistent`: True when both A/B orders gave the same choice, False when it flipped with the order, None when
    the pair was judged in one order only (or not at all).
    """

    pair_id: str
    judge: str | None
    human: str | None
    generator: str
    dimensions: tuple[str, ...]
    intensity: str
    consistent: bool | None = True

    def __post_init__(self) -> None:
        if self.judge is not None and self.judge not in LABELS:
            raise ValueError(f"pair {self.pair_id}: judge label {self.judge!r} is not one of {', '.join(LABELS)}")
        if self.human is not None and self.human not in (*LABELS, UNRESOLVED):
            raise ValueError(f"pair {self.pair_id}: human label {self.human!r} is not one of {', '.join(LABELS)}")
        if self.consistent is False and self.judge is not None:
            raise ValueError(f"pair {self.pair_id}: an inconsistent pair has no judge verdict, got {self.judge!r}")
        if self.consistent is True and self.judge is None:
            raise ValueError(f"pair {self.pair_id}: a consistent pair needs its judge verdict")

    @property
    def ordinal(self) -> str | None:
        """The judge's verdict for agreement with humans: a choice that flipped with the order is a tie (the judge
        holds no preference), as the release gate (`curation.core.judges.standing`) reads it."""
        return "tie" if self.consistent is False else self.judge


@dataclass(frozen=True)
class Agreement:
    """Judge against humans on the `n` pairs that have both verdicts.

    `kappa` and `quadratic_kappa` are None where undefined (a rater that uses a single label); `confusion` counts
    pairs as confusion[human label][judge label], both in `LABELS` order.
    """

    n: int
    accuracy: Interval
    kappa: Interval | None
    quadratic_kappa: Interval | None
    confusion: dict[str, dict[str, int]]


@dataclass(frozen=True)
class Flips:
    """Position bias: of the `checked` pairs judged in both orders, `flipped` changed choice with the order."""

    checked: int
    flipped: int
    rate: Interval | None


@dataclass(frozen=True)
class SuccessRate:
    """One generator's row of the headline table (see `success_rates`)."""

    generator: str
    judged: int
    anti: int
    tie: int
    base: int
    inconsistent: int
    rate: Interval | None
    tie_share: float | None
    base_share: float | None


def _code(label: str | None) -> int | None:
    if label is None or label == UNRESOLVED:
        return None
    if label not in LABELS:
        raise ValueError(f"label {label!r} is not one of {', '.join(LABELS)}")
    return LABELS.index(label)


def agreement(
    judge_labels: Sequence[str | None],
    human_labels: Sequence[str | None],
    *,
    seed: int,
    rounds: int = BOOTSTRAP_ROUNDS,
) -> Agreement | None:
    """Accuracy, kappa and quadratic kappa of the judge against humans, pair by pair; None without overlap.

    The two sequences are aligned by pair; a pair counts where both hold a label (not None, not `unresolved`).
    Intervals resample the overlapping pairs (seeded: the same seed gives the same intervals).
    """
    if len(judge_labels) != len(human_labels):
        raise ValueError(f"{len(judge_labels)} judge labels against {len(human_labels)} human labels")
    k = len(LABELS)
    codes = zip(map(_code, human_labels), map(_code, judge_labels), strict=True)
    cells = np.array([h * k + j for h, j in codes if h is not None and j is not None], dtype=np.int64)
    if not len(cells):
        return None

    def confusion(sample: NDArray[np.int64]) -> NDArray[np.int64]:
        return np.bincount(cells[sample], minlength=k * k).reshape(k, k)

    def accuracy(sample: NDArray[np.int64]) -> float | None:
        return float(np.trace(confusion(sample)) / len(sample))

    def kappa(weights: Literal["quadratic"] | None) -> measures.Statistic:
        return lambda sample: measures.kappa(confusion(sample), weights=weights)

    def interval(statistic: measures.Statistic) -> Interval | None:
        return measures.bootstrap(statistic, len(cells), seed=seed, rounds=rounds)

    overall = confusion(np.arange(len(cells)))
    accuracy_interval = interval(accuracy)
    assert accuracy_interval is not None  # accuracy is defined on any non-empty sample
    return Agreement(
        n=len(cells),
        accuracy=accuracy_interval,
        kappa=interval(kappa(None)),
        quadratic_kappa=interval(kappa("quadratic")),
        confusion={h: {j: int(overall[a, b]) for b, j in enumerate(LABELS)} for a, h in enumerate(LABELS)},
    )


def _groups(item: JudgedPair, facet: Facet) -> tuple[str, ...]:
    return {"dimension": item.dimensions, "intensity": (item.intensity,), "generator": (item.generator,)}[facet]


def agreement_by(
    items: Sequence[JudgedPair], facet: Facet, *, seed: int, rounds: int = BOOTSTRAP_ROUNDS
) -> dict[str, Agreement]:
    """`agreement` within each group of `facet` that has overlapping pairs, by group name.

    A pair with two dimensions counts in both; groups without a pair judged by both sides are left out.
    """
    groups: dict[str, list[JudgedPair]] = defaultdict(list)
    for item in items:
        for group in dict.fromkeys(_groups(item, facet)):
            groups[group].append(item)
    found = {
        group: agreement([i.ordinal for i in members], [i.human for i in members], seed=seed, rounds=rounds)
        for group, members in sorted(groups.items())
    }
    return {group: figures for group, figures in found.items() if figures is not None}


def flip_rate(items: Sequence[JudgedPair]) -> Flips:
    """The share of pairs judged in both A/B orders whose choice flipped with the order, with its Wilson interval."""
    checked = [item for item in items if item.consistent is not None]
    flipped = sum(item.consistent is False for item in checked)
    return Flips(checked=len(checked), flipped=flipped, rate=measures.wilson(flipped, len(checked)))


def success_rates(items: Sequence[JudgedPair]) -> dict[str, SuccessRate]:
    """Each generator's success rate at following anti-aesthetic prompts, as the judge sees it: the paper's table.

    Of a generator's pairs with a judge verdict (`judged`: both orders agreed, or one order asked), the success
    rate is the share where the judge picked the anti image, with its Wilson 95% interval; a tie is no success
    and counts in the denominator, and the tie and base shares are reported apart (the three shares sum to 1).
    Inconsistent pairs (the choice flipped with the order) are counted but left out of the denominator; pairs
    without a judge verdict for any other reason are left out altogether.
    """
    by_generator: dict[str, list[JudgedPair]] = defaultdict(list)
    for item in items:
        by_generator[item.generator].append(item)
    rates = {}
    for generator, members in sorted(by_generator.items()):
        counts = {label: sum(item.judge == label for item in members) for label in LABELS}
        judged = sum(counts.values())
        rates[generator] = SuccessRate(
            generator=generator,
            judged=judged,
            anti=counts["anti"],
            tie=counts["tie"],
            base=counts["base"],
            inconsistent=sum(item.consistent is False for item in members),
            rate=measures.wilson(counts["anti"], judged),
            tie_share=counts["tie"] / judged if judged else None,
            base_share=counts["base"] / judged if judged else None,
        )
    return rates
