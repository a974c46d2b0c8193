"""Fitting thresholds to human verdicts (pure numpy; measures from curation.core.measures).

For one metric and one scope (all pairs, or the pairs of one dimension) the fitted threshold is the cut that
maximises balanced accuracy — the mean of recall on pairs humans accepted and on pairs they did not — so a
scope where most pairs succeed is not fitted to "accept everything". A fit replaces the current value only
with enough verdicts and a metric that actually ranks pairs the way humans do (AUROC).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from curation.core import measures


@dataclass(frozen=True)
class Quality:
    """How well `value ≥ threshold` predicts the human verdict."""

    threshold: float
    balanced_accuracy: float
    precision: float
    recall: float


@dataclass(frozen=True)
class Fit:
    metric: str
    scope: str  # "global" or a dimension id
    n: int
    positives: int
    auroc: float | None
    current: Quality | None
    fitted: Quality | None
    action: str  # "write" or why the current value is kept

    @property
    def writes(self) -> bool:
        return self.action == "write"


def _arrays(values: ArrayLike, labels: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    v = np.asarray(values, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    if v.shape != y.shape:
        raise ValueError("values and labels differ in length")
    return v, y


def auroc(values: ArrayLike, labels: ArrayLike) -> float | None:
    """Probability that a random positive scores above a random negative (ties count half); None without both."""
    v, y = _arrays(values, labels)
    return measures.auroc(v, y)


def quality_at(values: ArrayLike, labels: ArrayLike, threshold: float) -> Quality:
    """Balanced accuracy, precision and recall of accepting `value ≥ threshold`."""
    v, y = _arrays(values, labels)
    predicted = v >= threshold
    return Quality(
        float(threshold),
        measures.balanced_accuracy(y, predicted),
        measures.precision(y, predicted),
        measures.recall(y, predicted),
    )


def best_threshold(values: ArrayLike, labels: ArrayLike) -> Quality | None:
    """The cut between two distinct observed values that maximises balanced accuracy (lowest cut on ties).

    None when there are not two classes or not two distinct values to cut between.
    """
    v, y = _arrays(values, labels)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    distinct = np.unique(v)
    if not n_pos or not n_neg or len(distinct) < 2:
        return None
    cuts = (distinct[:-1] + distinct[1:]) / 2
    # For each cut: positives at or above it (true positives) and negatives below it (true negatives).
    tp = _counts_above(v, y, cuts)
    tn = n_neg - _counts_above(v, ~y, cuts)
    balanced = (tp / n_pos + tn / n_neg) / 2
    best = int(np.argmax(balanced))
    return quality_at(v, y, float(cuts[best]))


def _counts_above(v: NDArray[np.float64], mask: NDArray[np.bool_], cuts: NDArray[np.float64]) -> NDArray[np.int64]:
    """How many masked values lie at or above each cut (sorted search, for many cuts)."""
    chosen = np.sort(v[mask])
    return len(chosen) - np.searchsorted(chosen, cuts, side="left")


def fit(
    metric: str,
    scope: str,
    values: Sequence[float],
    labels: Sequence[bool],
    current: float,
    *,
    min_verdicts: int,
    min_auroc: float,
) -> Fit:
    """Fit one threshold and decide whether it should replace `current`."""
    n, positives = len(values), int(sum(labels))
    area = auroc(values, labels) if n else None
    now = quality_at(values, labels, current) if n and positives and positives < n else None
    fitted = best_threshold(values, labels) if n else None
    if n < min_verdicts:
        action = f"kept: {n} verdicts < {min_verdicts}"
    elif fitted is None or area is None:
        action = "kept: verdicts all agree (no threshold to fit)"
    elif area < min_auroc:
        action = f"kept: AUROC {area:.2f} < {min_auroc:g}"
    else:
        action = "write"
    return Fit(metric, scope, n, positives, area, now, fitted, action)


Sample = tuple[Sequence[str], Mapping[str, float], bool]


def collect(samples: Sequence[Sample], metric: str) -> dict[str, tuple[list[float], list[bool]]]:
    """Values and labels per scope for one metric family from (dimensions, values, accepted-by-humans) samples.

    `probe` draws on `probe:<d>` per dimension; its global scope counts each pair once, at its lowest probe (the
    global probe threshold passes a pair only when every probe it asks for clears it).
    """
    scopes: dict[str, tuple[list[float], list[bool]]] = {"global": ([], [])}
    for dimensions, values, label in samples:
        probes = []
        for dim in dimensions:
            key = f"probe:{dim}" if metric == "probe" else metric
            value = values.get(key)
            if value is None:
                continue
            probes.append(value)
            vs, ls = scopes.setdefault(dim, ([], []))
            vs.append(value)
            ls.append(label)
        pooled = min(probes, default=None) if metric == "probe" else values.get(metric)
        if pooled is not None:
            scopes["global"][0].append(pooled)
            scopes["global"][1].append(label)
    return scopes
