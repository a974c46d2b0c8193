"""How far annotators agree (pure): Krippendorff's alpha (nominal) with a seeded bootstrap interval over the
round's pairs, and Cohen's kappa for every two annotators who share enough tasks.

Alpha is computed from coincidence counts (Krippendorff 2011): each unit answered by m ≥ 2 annotators adds
n_c·n_k / (m − 1) to the cell (c, k). Summing per-pair coincidence matrices makes a bootstrap draw a weighted sum,
so the interval costs little more than the value; the figure equals the `krippendorff` package's (tests hold it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from numpy.typing import NDArray

from curation.core.measures import Interval, bootstrap, kappa

CHOICES = ("anti", "base", "tie")
MIN_SHARED_TASKS = 20  # pairs of annotators with fewer shared tasks get no kappa

# A unit (one question about one pair, or one quality / flag of it) → {annotator: value}; a unit's key is
# (pair, part), and the bootstrap resamples pairs with all their parts.
Units = Mapping[tuple[str, str], Mapping[str, Hashable]]


def _coincidences(units: Units) -> tuple[list[str], NDArray[np.float64]]:
    """The pairs in order and one V×V coincidence matrix per pair (V: the values used)."""
    domain = sorted({str(v) for answers in units.values() for v in answers.values()})
    code = {v: i for i, v in enumerate(domain)}
    pairs = sorted({pair for pair, _part in units})
    row = {pair: i for i, pair in enumerate(pairs)}
    matrices = np.zeros((len(pairs), len(domain), len(domain)))
    for (pair, _part), answers in units.items():
        m = len(answers)
        if m < 2:
            continue  # a value nobody else gave about the unit cannot be paired
        counts = np.bincount([code[str(v)] for v in answers.values()], minlength=len(domain)).astype(np.float64)
        matrices[row[pair]] += (np.outer(counts, counts) - np.diag(counts)) / (m - 1)
    return pairs, matrices


def _alpha(coincidence: NDArray[np.floating]) -> float | None:
    """1 − D_o / D_e of one coincidence matrix; None without two pairable values of different kinds."""
    n_c = coincidence.sum(axis=1)
    n = float(n_c.sum())
    expected = n * n - float((n_c**2).sum())  # Σ_{c≠k} n_c·n_k
    if n < 2 or expected <= 1e-12:
        return None
    observed = n - float(np.trace(coincidence))  # Σ_{c≠k} o_ck
    return 1.0 - (n - 1) * observed / expected


def nominal_alpha(units: Units) -> float | None:
    """Krippendorff's alpha (nominal) over units → {annotator: value}; None when it is undefined."""
    _pairs, matrices = _coincidences(units)
    return _alpha(matrices.sum(axis=0)) if len(matrices) else None


def alpha_interval(units: Units, *, seed: int) -> Interval | None:
    """Nominal alpha with its bootstrap 95% interval over resampled pairs (seeded); None when undefined."""
    pairs, matrices = _coincidences(units)
    if not pairs:
        return None

    def statistic(sample: NDArray[np.int64]) -> float | None:
        weights = np.bincount(sample, minlength=len(pairs)).astype(np.float64)
        return _alpha(np.tensordot(weights, matrices, axes=1))

    return bootstrap(statistic, len(pairs), seed=seed)


@dataclass(frozen=True)
class KappaPair:
    """Cohen's kappa of two annotators on the choice, over the tasks both answered."""

    first: str
    second: str
    shared: int
    kappa: float | None  # None when either used one choice only


def pairwise_kappa(choices: Mapping[str, Mapping[str, str]], min_shared: int = MIN_SHARED_TASKS) -> list[KappaPair]:
    """Kappa for every two annotators with at least `min_shared` shared tasks; `choices`: task → {annotator: choice}."""
    shared: dict[tuple[str, str], Counter[tuple[str, str]]] = {}
    for answers in choices.values():
        for first, second in combinations(sorted(answers), 2):
            shared.setdefault((first, second), Counter())[(answers[first], answers[second])] += 1
    index = {c: i for i, c in enumerate(CHOICES)}
    found = []
    for (first, second), cells in sorted(shared.items()):
        total = sum(cells.values())
        if total < min_shared:
            continue
        confusion = np.zeros((len(CHOICES), len(CHOICES)))
        for (a, b), count in cells.items():
            confusion[index[a], index[b]] += count
        found.append(KappaPair(first, second, total, kappa(confusion)))
    return found
