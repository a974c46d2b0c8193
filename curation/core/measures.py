"""The project's one set of classification measures, on scikit-learn: calibration, the audit (and the judge) use it.

Each function takes plain arrays and returns a float, or None where the measure is undefined (AUROC without
both classes, kappa with a rater who uses one label): an undefined figure is never reported as 0 or 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from curation.core.intervals import Interval

BOOTSTRAP_ROUNDS = 1000
# A figure computed on a sample of item indices; None where it is undefined on that sample.
Statistic = Callable[[NDArray[np.int64]], float | None]


def _labels(labels: ArrayLike) -> NDArray[np.bool_]:
    return np.asarray(labels, dtype=bool)


def auroc(scores: ArrayLike, labels: ArrayLike) -> float | None:
    """Probability that a random positive scores above a random negative (ties count half); None without both."""
    y = _labels(labels)
    if y.all() or not y.any():
        return None
    from sklearn.metrics import roc_auc_score  # imported on use: status and export never pay for it

    return float(roc_auc_score(y, np.asarray(scores, dtype=np.float64)))


def balanced_accuracy(labels: ArrayLike, predicted: ArrayLike) -> float:
    """Mean of the recall on positives and on negatives (a class that is absent counts as recall 0)."""
    y, p = _labels(labels), _labels(predicted)
    tpr = float((p & y).sum() / y.sum()) if y.any() else 0.0
    tnr = float((~p & ~y).sum() / (~y).sum()) if (~y).any() else 0.0
    return (tpr + tnr) / 2


def precision(labels: ArrayLike, predicted: ArrayLike) -> float:
    from sklearn.metrics import precision_score

    return float(precision_score(_labels(labels), _labels(predicted), zero_division=0.0))


def recall(labels: ArrayLike, predicted: ArrayLike) -> float:
    from sklearn.metrics import recall_score

    return float(recall_score(_labels(labels), _labels(predicted), zero_division=0.0))


def f1(labels: ArrayLike, predicted: ArrayLike) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(_labels(labels), _labels(predicted), zero_division=0.0))


def kappa(confusion: ArrayLike, *, weights: Literal["linear", "quadratic"] | None = None) -> float | None:
    """Cohen's kappa of two raters from their square confusion matrix (labels in the same order on both axes).

    The figure scikit-learn's `cohen_kappa_score` gives for the same labels and weights (the tests hold them
    equal), computed from counts: a bootstrap calls it thousands of times and scikit-learn's input checks cost
    forty times the arithmetic. `weights` counts a disagreement by the distance between the labels' ranks
    ("linear") or its square ("quadratic", for ordinal labels); unweighted, every disagreement counts 1.
    None when either rater uses a single label: kappa is then 0 whatever the agreement (0/0 when both use the
    same one), a figure that says nothing about the raters.
    """
    counts = np.asarray(confusion, dtype=np.float64)
    rows, cols = counts.sum(axis=1), counts.sum(axis=0)
    if np.count_nonzero(rows) < 2 or np.count_nonzero(cols) < 2:
        return None
    ranks = np.arange(len(counts), dtype=np.float64)
    distance = np.abs(ranks[:, None] - ranks[None, :])
    weight = distance**2 if weights == "quadratic" else distance if weights == "linear" else (distance > 0) * 1.0
    expected = np.outer(rows, cols) / counts.sum()
    return float(1 - (weight * counts).sum() / (weight * expected).sum())


def bootstrap(
    statistic: Statistic,
    n: int,
    *,
    seed: int,
    rounds: int = BOOTSTRAP_ROUNDS,
    level: float = 0.95,
) -> Interval | None:
    """`statistic` on all n items with its percentile interval over `rounds` resamples of them (seeded).

    `statistic` takes the indices of a sample; None when the figure is undefined on all items.
    """
    value = statistic(np.arange(n))
    if value is None:
        return None
    rng = np.random.default_rng(seed)
    draws = [statistic(rng.integers(0, n, n)) for _ in range(rounds)]
    defined = np.array([d for d in draws if d is not None], dtype=np.float64)
    if len(defined) < rounds / 2:
        return Interval(value, None, None)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(defined, [tail, 100 - tail])
    return Interval(value, float(low), float(high))


def wilson(successes: int, n: int, level: float = 0.95) -> Interval | None:
    """The share successes / n with its Wilson score interval (sound near 0 and 1 and on few items); None when n is 0."""
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in 0..n, got {successes} of {n}")
    if n == 0:
        return None
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    share = successes / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return Interval(share, max(0.0, centre - half), min(1.0, centre + half))
