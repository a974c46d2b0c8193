"""Calibration: planted thresholds are recovered; AUROC, precision and recall have their textbook values."""

from __future__ import annotations

import numpy as np
import pytest

from curation.filter import calibrate


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


def test_collect_pools_probe_scores_across_dimensions() -> None:
    samples: list[calibrate.Sample] = [
        (["blurry"], {"direction": 0.1, "probe:blurry": 0.4}, True),
        (["blurry", "noisy"], {"direction": -0.1, "probe:blurry": -0.2, "probe:noisy": 0.3}, False),
    ]
    direction = calibrate.collect(samples, "direction")
    assert direction["global"] == ([0.1, -0.1], [True, False])
    assert direction["noisy"] == ([-0.1], [False])
    probe = calibrate.collect(samples, "probe")
    assert probe["global"] == ([0.4, -0.2, 0.3], [True, False, False])
    assert probe["blurry"] == ([0.4, -0.2], [True, False])
