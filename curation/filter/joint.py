"""Fitting every gate's threshold together, as the decision rule applies them (pure numpy; measures from curation.core.measures).

The clip stage accepts a pair only when it passes every gate: fidelity, content_kept and direction at the
strictest threshold of its dimensions (the global one unless every dimension overrides it) and each dimension's
probe at that dimension's threshold (or the global probe one). Fitting each threshold alone ignores that the
gates act together: a pair a strict fidelity gate already rejects tells nothing about direction. Here the
thresholds are fitted by coordinate ascent on the balanced accuracy of the whole rule: one threshold at a time
moves to its best cut with the others held, until none moves. Each step is exact and vectorised: with the others
fixed, a pair is accepted at cut `c` exactly when it passes the other gates and every gate value that `c`
bounds is at least `c`.

`cross_validate` runs the whole fitting procedure (which thresholds qualify, their starting values, the ascent)
on k-1 folds and applies the result to the held-out fold, so its figures estimate how the fitted rule does on
pairs it was not fitted to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.model_selection import StratifiedKFold

from curation.core import measures
from curation.domain.gates import GATE_KEYS, METRIC_FLOOR, Thresholds
from curation.filter.calibrate import Fit, Sample, collect, fit

PAIR_FAMILIES = ("fidelity", "content_kept", "direction")
GLOBAL = "global"
MAX_ROUNDS = 25
Param = tuple[str, str]  # (metric family, "global" or a dimension id)
Values = dict[Param, float]


@dataclass(frozen=True)
class RuleQuality:
    """How well the whole decision rule (every gate) predicts the human verdicts."""

    n: int
    balanced_accuracy: float
    precision: float
    recall: float
    auroc: float | None  # of the rule's slack: the smallest margin by which a pair clears its gates


@dataclass(frozen=True)
class JointValue:
    metric: str
    scope: str
    current: float
    fitted: float
    free: bool  # fitted here (enough informative verdicts); otherwise held at its current value


def flat(thresholds: Thresholds) -> Values:
    """Thresholds as one value per (family, scope)."""
    values: Values = {(family, GLOBAL): value for family, value in thresholds.minimums.items()}
    for dim, overrides in thresholds.per_dimension.items():
        values.update({(family, dim): value for family, value in overrides.items()})
    return values


def with_values(thresholds: Thresholds, values: Mapping[Param, float]) -> Thresholds:
    """`thresholds` with every (family, scope) value of `values` set."""
    minimums = dict(thresholds.minimums)
    per_dimension = {d: dict(v) for d, v in thresholds.per_dimension.items()}
    for (family, scope), value in values.items():
        if scope == GLOBAL:
            minimums[family] = value
        else:
            per_dimension.setdefault(scope, {})[family] = value
    return Thresholds(
        minimums,
        per_dimension,
        thresholds.review_margin,
        thresholds.min_text_distance,
        thresholds.max_sibling_cosine,
    )


class GateMatrix:
    """Samples as arrays: one value column per gate metric, dimension membership, human labels."""

    dims: list[str]
    labels: NDArray[np.bool_]
    member: NDArray[np.bool_]
    values: dict[str, NDArray[np.float64]]

    def __init__(self, samples: Sequence[Sample]) -> None:
        self.dims = sorted({d for dims, _, _ in samples for d in dims})
        n = len(samples)
        self.labels = np.array([label for _, _, label in samples], dtype=bool)
        self.member = np.zeros((n, len(self.dims)), dtype=bool)
        index = {d: i for i, d in enumerate(self.dims)}
        for row, (dims, _, _) in enumerate(samples):
            self.member[row, [index[d] for d in dims]] = True
        self.values = {
            family: np.array([values[family] for _, values, _ in samples], dtype=np.float64) for family in PAIR_FAMILIES
        }
        # A probe the pair does not ask for, or that was not scored, bounds nothing: +inf passes any threshold.
        for d in self.dims:
            self.values[f"probe:{d}"] = np.array(
                [values.get(f"probe:{d}", np.inf) if d in dims else np.inf for dims, values, _ in samples],
                dtype=np.float64,
            )

    def __len__(self) -> int:
        return len(self.labels)

    def _overridden(self, family: str, values: Mapping[Param, float]) -> NDArray[np.bool_]:
        """Per dimension, whether `family` has its own threshold there."""
        return np.array([(family, d) in values for d in self.dims], dtype=bool)

    def _needs_global(self, overridden: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """Pairs the global threshold applies to: some dimension without an override, or no dimension at all."""
        return np.asarray(self.member[:, ~overridden].any(axis=1) | ~self.member.any(axis=1), dtype=bool)

    def _gates(self, values: Mapping[Param, float]) -> list[tuple[NDArray[np.float64], NDArray[np.float64], float]]:
        """(gate values, per-pair thresholds, floor) for every gate, thresholds as Thresholds.threshold gives."""
        gates = []
        n = len(self)
        for family in PAIR_FAMILIES:
            limit: NDArray[np.float64] = np.full(n, -np.inf)
            overridden = self._overridden(family, values)
            for i in np.flatnonzero(overridden):
                limit = np.where(self.member[:, i], np.maximum(limit, values[(family, self.dims[i])]), limit)
            limit = np.where(
                self._needs_global(overridden), np.maximum(limit, values.get((family, GLOBAL), -np.inf)), limit
            )
            gates.append((self.values[family], limit, METRIC_FLOOR[family]))
        for i, d in enumerate(self.dims):
            value = values.get(("probe", d), values.get(("probe", GLOBAL), -np.inf))
            gates.append(
                (self.values[f"probe:{d}"], np.where(self.member[:, i], value, -np.inf), METRIC_FLOOR["probe"])
            )
        return gates

    def evaluate(self, values: Mapping[Param, float]) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
        """Which pairs the rule accepts, and each pair's slack (smallest margin over its active gates)."""
        accepted: NDArray[np.bool_] = np.ones(len(self), dtype=bool)
        slack: NDArray[np.float64] = np.full(len(self), np.inf)
        for gate_values, limit, floor in self._gates(values):
            active = limit > floor  # a threshold at or below the metric's floor switches the gate off
            accepted &= ~active | (gate_values >= limit)
            slack = np.where(active, np.minimum(slack, gate_values - limit), slack)
        return accepted, slack

    def bound_by(self, param: Param, values: Mapping[Param, float]) -> NDArray[np.float64]:
        """Per pair, the smallest gate value that `param` is a candidate threshold for (+inf where none)."""
        family, scope = param
        bound: NDArray[np.float64] = np.full(len(self), np.inf)
        if family in PAIR_FAMILIES:
            if scope == GLOBAL:
                applies = self._needs_global(self._overridden(family, values))
            else:
                applies = self.member[:, self.dims.index(scope)] if scope in self.dims else np.zeros(len(self), bool)
            return np.where(applies, self.values[family], bound)
        for i, d in enumerate(self.dims):
            governs = d == scope if scope != GLOBAL else ("probe", d) not in values
            if governs:
                bound = np.where(self.member[:, i], np.minimum(bound, self.values[f"probe:{d}"]), bound)
        return bound

    def subset(self, rows: NDArray[np.int64]) -> GateMatrix:
        other = object.__new__(GateMatrix)
        other.dims = self.dims
        other.labels = self.labels[rows]
        other.member = self.member[rows]
        other.values = {k: v[rows] for k, v in self.values.items()}
        return other


def best_cut(matrix: GateMatrix, param: Param, values: Values) -> float:
    """The value of `param` that maximises the rule's balanced accuracy with every other threshold held;
    among equally good cuts, the one nearest the current value (so the ascent never moves without gain)."""
    held = {**values, param: -np.inf}  # out of every max: the other candidate thresholds alone
    others, _ = matrix.evaluate(held)
    bound = matrix.bound_by(param, values)
    labels = matrix.labels
    current = values[param]
    finite = np.unique(bound[others & np.isfinite(bound)])
    cuts = np.unique(np.r_[(finite[:-1] + finite[1:]) / 2, current]) if len(finite) > 1 else np.array([current])
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if not n_pos or not n_neg:
        return current
    pos = np.sort(bound[others & labels])
    neg = np.sort(bound[others & ~labels])
    tp = len(pos) - np.searchsorted(pos, cuts, side="left")
    fp = len(neg) - np.searchsorted(neg, cuts, side="left")
    score = (tp / n_pos + (n_neg - fp) / n_neg) / 2
    best = np.flatnonzero(np.isclose(score, score.max(), rtol=0, atol=1e-12))
    return float(cuts[best[np.argmin(np.abs(cuts[best] - current))]])


def ascend(matrix: GateMatrix, start: Values, free: Sequence[Param]) -> Values:
    """Coordinate ascent over the `free` thresholds until no threshold moves (or MAX_ROUNDS)."""
    values = dict(start)
    for _ in range(MAX_ROUNDS):
        moved = False
        for param in free:
            cut = best_cut(matrix, param, values)
            if cut != values[param]:
                values[param], moved = cut, True
        if not moved:
            break
    return values


def marginal_fits(samples: Sequence[Sample], current: Thresholds, *, min_verdicts: int, min_auroc: float) -> list[Fit]:
    """Each gate's threshold fitted alone, globally and per dimension: the diagnostics, and which thresholds
    have enough informative verdicts to be fitted at all."""
    fits = []
    for family in GATE_KEYS:
        scopes = collect(samples, family)
        for scope in sorted(scopes, key=lambda s: (s != GLOBAL, s)):
            scope_values, labels = scopes[scope]
            now = current.minimums[family] if scope == GLOBAL else current.threshold(family, [scope])[0]
            fits.append(fit(family, scope, scope_values, labels, now, min_verdicts=min_verdicts, min_auroc=min_auroc))
    return fits


def fit_rule(
    matrix: GateMatrix, samples: Sequence[Sample], current: Thresholds, *, min_verdicts: int, min_auroc: float
) -> tuple[Values, list[Param], list[Fit]]:
    """The whole procedure: marginal fits choose the free thresholds and their start, then the joint ascent."""
    fits = marginal_fits(samples, current, min_verdicts=min_verdicts, min_auroc=min_auroc)
    free = [(f.metric, f.scope) for f in fits if f.writes and f.fitted is not None]
    start = flat(current) | {(f.metric, f.scope): f.fitted.threshold for f in fits if f.writes and f.fitted}
    return ascend(matrix, start, free), free, fits


def quality(labels: NDArray[np.bool_], accepted: NDArray[np.bool_], slack: NDArray[np.float64]) -> RuleQuality:
    """Balanced accuracy, precision and recall of the rule's accept, AUROC of its slack (None without both)."""
    finite = np.where(np.isfinite(slack), slack, np.nan)
    top = np.nanmax(finite) + 1.0 if np.isfinite(finite).any() else 1.0
    ranked = np.nan_to_num(finite, nan=top)  # a pair no active gate bounds ranks above every bounded one
    return RuleQuality(
        n=len(labels),
        balanced_accuracy=measures.balanced_accuracy(labels, accepted),
        precision=measures.precision(labels, accepted),
        recall=measures.recall(labels, accepted),
        auroc=measures.auroc(ranked, labels),
    )


def cross_validate(
    samples: Sequence[Sample],
    current: Thresholds,
    *,
    min_verdicts: int,
    min_auroc: float,
    seed: int,
    folds: int = 5,
) -> tuple[RuleQuality | None, int]:
    """Held-out quality of the fitting procedure (stratified k-fold, seeded), and the folds used (0: too few)."""
    matrix = GateMatrix(samples)
    labels = matrix.labels
    k = min(folds, int(labels.sum()), int((~labels).sum()))
    if k < 2:
        return None, 0
    accepted = np.zeros(len(labels), dtype=bool)
    slack = np.zeros(len(labels))
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for train, test in splitter.split(np.zeros(len(labels)), labels):
        train_samples = [samples[i] for i in train]
        values, _, _ = fit_rule(
            matrix.subset(train), train_samples, current, min_verdicts=min_verdicts, min_auroc=min_auroc
        )
        accepted[test], slack[test] = matrix.subset(test).evaluate(values)
    return quality(labels, accepted, slack), k
