"""Calibration: planted thresholds are recovered; AUROC, precision and recall have their textbook values."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from curation.domain.gates import MetricValue, Thresholds, decide_pair
from curation.filter import calibrate, joint


def test_auroc_known_values() -> None:
    assert calibrate.auroc([0.1, 0.2, 0.8, 0.9], [False, False, True, True]) == 1.0
    assert calibrate.auroc([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == 0.0
    # One tie between a positive and a negative counts half: 3 of 4 ordered pairs right + 0.5.
    assert calibrate.auroc([0.1, 0.5, 0.5, 0.9], [False, False, True, True]) == pytest.approx(0.875)
    assert calibrate.auroc([0.1, 0.2], [True, True]) is None


def test_quality_at_threshold() -> None:
    q = calibrate.quality_at([0.1, 0.3, 0.6, 0.9], [False, True, False, True], 0.5)
    # accepted: 0.6 (wrong), 0.9 (right) → precision 1/2; recall 1/2; specificity 1/2.
    assert (q.precision, q.recall, q.balanced_accuracy) == (0.5, 0.5, 0.5)


def test_planted_threshold_is_recovered_from_noisy_verdicts() -> None:
    rng = np.random.default_rng(7)
    values = rng.uniform(-0.3, 0.5, size=400)
    planted = 0.12
    labels = values >= planted
    flip = rng.random(400) < 0.05  # annotators disagree with the metric now and then
    labels = labels ^ flip
    best = calibrate.best_threshold(values, labels)
    assert best is not None
    assert best.threshold == pytest.approx(planted, abs=0.02)
    assert best.balanced_accuracy > 0.9


def test_imbalanced_verdicts_do_not_fit_accept_everything() -> None:
    # 90 % positives: plain accuracy would prefer a threshold below every value; balanced accuracy does not.
    values = np.r_[np.linspace(0.3, 0.9, 90), np.linspace(0.0, 0.25, 10)]
    labels = np.r_[np.ones(90, bool), np.zeros(10, bool)]
    best = calibrate.best_threshold(values, labels)
    assert best is not None and 0.25 < best.threshold < 0.3
    assert best.balanced_accuracy == 1.0


def test_fit_keeps_the_current_value_without_enough_or_informative_verdicts() -> None:
    rng = np.random.default_rng(3)
    values = list(rng.uniform(0, 1, 40))
    informative = [v > 0.5 for v in values]
    assert calibrate.fit("direction", "global", values, informative, 0.0, min_verdicts=30, min_auroc=0.6).writes
    few = calibrate.fit("direction", "blurry", values[:10], informative[:10], 0.0, min_verdicts=30, min_auroc=0.6)
    assert few.action == "kept: 10 verdicts < 30"
    noise = list(rng.random(40) > 0.5)
    kept = calibrate.fit("direction", "global", values, noise, 0.0, min_verdicts=30, min_auroc=0.9)
    assert not kept.writes and kept.action.startswith("kept: AUROC")
    assert kept.current is not None and kept.current.threshold == 0.0


def test_collect_counts_each_pair_once_in_the_global_probe_scope() -> None:
    samples: list[calibrate.Sample] = [
        (["blurry"], {"direction": 0.1, "probe:blurry": 0.4}, True),
        (["blurry", "noisy"], {"direction": -0.1, "probe:blurry": -0.2, "probe:noisy": 0.3}, False),
    ]
    direction = calibrate.collect(samples, "direction")
    assert direction["global"] == ([0.1, -0.1], [True, False])
    assert direction["noisy"] == ([-0.1], [False])
    probe = calibrate.collect(samples, "probe")
    # one value per pair, its lowest probe: the global probe threshold passes a pair when all its probes clear it
    assert probe["global"] == ([0.4, -0.2], [True, False])
    assert probe["blurry"] == ([0.4, -0.2], [True, False])


# -- the joint fit -----------------------------------------------------------------------------------------

DIMS = ["blurry", "noisy", "dread"]


def _samples(n: int, seed: int, rule: Callable[[dict[str, float]], bool], noise: float = 0.0) -> list[calibrate.Sample]:
    rng = np.random.default_rng(seed)
    samples: list[calibrate.Sample] = []
    for _ in range(n):
        dims = list(rng.choice(DIMS, size=int(rng.integers(1, 3)), replace=False))
        values = {
            "fidelity": float(rng.uniform(0.0, 0.4)),
            "content_kept": float(rng.uniform(0.0, 0.3)),
            "direction": float(rng.uniform(-0.1, 0.15)),
        }
        values |= {f"probe:{d}": float(rng.uniform(-0.5, 0.5)) for d in dims}
        label = rule(values) ^ bool(rng.random() < noise)
        samples.append((dims, values, label))
    return samples


def _thresholds(**minimums: float) -> Thresholds:
    base = {"fidelity": -1.0, "content_kept": -1.0, "direction": -2.0, "probe": -2.0}
    return Thresholds(base | minimums)


def test_the_vectorised_rule_is_the_decision_rule() -> None:
    """GateMatrix.evaluate accepts exactly the pairs decide_pair accepts, overrides and switched-off gates included."""
    rng = np.random.default_rng(11)
    samples = _samples(300, 5, lambda v: True)
    matrix = joint.GateMatrix(samples)
    for trial in range(20):
        thresholds = Thresholds(
            {
                "fidelity": float(rng.uniform(-0.1, 0.3)),
                "content_kept": -1.0 if trial % 3 == 0 else float(rng.uniform(0.0, 0.2)),
                "direction": float(rng.uniform(-0.1, 0.1)),
                "probe": -2.0 if trial % 4 == 0 else float(rng.uniform(-0.4, 0.2)),
            },
            {
                "blurry": {"fidelity": float(rng.uniform(0.0, 0.35)), "probe": float(rng.uniform(-0.3, 0.3))},
                "dread": {"direction": float(rng.uniform(-0.05, 0.1))},
            },
        )
        accepted, _ = matrix.evaluate(joint.flat(thresholds))
        expected = [
            decide_pair({m: MetricValue(v) for m, v in values.items()}, dims, thresholds).outcome == "accept"
            for dims, values, _ in samples
        ]
        assert accepted.tolist() == expected


@pytest.mark.slow
def test_joint_fit_recovers_two_planted_gates_with_held_out_figures() -> None:
    def planted(v: dict[str, float]) -> bool:
        return v["fidelity"] >= 0.2 and v["direction"] >= 0.05

    samples = _samples(600, 1, planted, noise=0.03)
    current = _thresholds(fidelity=0.0, direction=-0.1)
    matrix = joint.GateMatrix(samples)
    fitted, free, _ = joint.fit_rule(matrix, samples, current, min_verdicts=30, min_auroc=0.6)
    assert ("fidelity", "global") in free and ("direction", "global") in free
    assert fitted[("fidelity", "global")] == pytest.approx(0.2, abs=0.015)
    assert fitted[("direction", "global")] == pytest.approx(0.05, abs=0.01)
    in_sample = joint.quality(matrix.labels, *matrix.evaluate(fitted))
    assert in_sample.balanced_accuracy > 0.9
    held_out, folds = joint.cross_validate(samples, current, min_verdicts=30, min_auroc=0.6, seed=3)
    assert folds == 5 and held_out is not None and held_out.n == 600
    # Held out, the procedure does about as well as in-sample on this clean signal, and no better than it.
    assert 0.85 < held_out.balanced_accuracy <= in_sample.balanced_accuracy + 0.02
    assert held_out.auroc is not None and held_out.auroc > 0.85


def test_a_gate_fitted_alone_rejects_what_another_gate_decides_and_the_joint_fit_does_not() -> None:
    """Humans accept a pair when direction >= 0, and direction = fidelity - (something in 0.1..0.3), as the
    metrics are in practice related. Fitted alone, fidelity ranks pairs well (high AUROC) and gets a cut that
    rejects good pairs; fitted as the rule applies them, fidelity falls to where direction already decides."""
    rng = np.random.default_rng(1)
    samples: list[calibrate.Sample] = []
    for _ in range(600):
        fidelity = float(rng.uniform(0.0, 0.4))
        direction = fidelity - float(rng.uniform(0.1, 0.3))
        values = {"fidelity": fidelity, "content_kept": float(rng.uniform(0.0, 0.3)), "direction": direction}
        samples.append(([], values, (direction >= 0.0) ^ bool(rng.random() < 0.03)))
    current = _thresholds(fidelity=0.0, direction=-0.1)
    matrix = joint.GateMatrix(samples)
    fitted, _, fits = joint.fit_rule(matrix, samples, current, min_verdicts=30, min_auroc=0.6)
    alone = joint.flat(current) | {(f.metric, f.scope): f.fitted.threshold for f in fits if f.writes and f.fitted}
    assert alone[("fidelity", "global")] > 0.17  # the marginal cut: it rejects pairs with direction >= 0
    assert fitted[("direction", "global")] == pytest.approx(0.0, abs=0.01)
    assert fitted[("fidelity", "global")] < 0.13  # every pair with direction >= 0 has fidelity >= 0.1
    together = joint.quality(matrix.labels, *matrix.evaluate(fitted))
    separately = joint.quality(matrix.labels, *matrix.evaluate(alone))
    assert together.balanced_accuracy > separately.balanced_accuracy + 0.05
    assert together.recall > separately.recall + 0.1


@pytest.mark.slow
def test_held_out_figures_expose_a_rule_fitted_to_noise() -> None:
    """Verdicts unrelated to the scores: in-sample the fit looks useful, held out it is a coin toss."""
    rng = np.random.default_rng(9)
    coin = iter(rng.random(120) < 0.5)
    samples = _samples(120, 2, lambda v: bool(next(coin)))
    current = _thresholds()
    matrix = joint.GateMatrix(samples)
    fitted, free, _ = joint.fit_rule(matrix, samples, current, min_verdicts=10, min_auroc=0.0)
    assert free  # with no AUROC floor every threshold is fitted
    in_sample = joint.quality(matrix.labels, *matrix.evaluate(fitted))
    held_out, _ = joint.cross_validate(samples, current, min_verdicts=10, min_auroc=0.0, seed=4)
    assert held_out is not None
    assert in_sample.balanced_accuracy > 0.6
    assert held_out.balanced_accuracy < 0.58
    assert held_out.balanced_accuracy < in_sample.balanced_accuracy - 0.1


def test_cross_validation_needs_two_verdicts_of_each_kind() -> None:
    samples = _samples(20, 3, lambda v: v["fidelity"] > 0.39)
    labels = [label for _, _, label in samples]
    assert sum(labels) < 2
    assert joint.cross_validate(samples, _thresholds(), min_verdicts=5, min_auroc=0.5, seed=0) == (None, 0)
