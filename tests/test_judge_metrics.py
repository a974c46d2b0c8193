"""The judge's figures against hand-computed cases and scikit-learn's `cohen_kappa_score`."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from curation.core import measures
from curation.core.judges import Standing, gate
from curation.judge.metrics import (
    LABELS,
    JudgedPair,
    agreement,
    agreement_by,
    flip_rate,
    success_rates,
)

# human:  anti anti base tie anti base
# judge:  anti tie  base tie base base
HUMAN = ["anti", "anti", "base", "tie", "anti", "base"]
JUDGE = ["anti", "tie", "base", "tie", "base", "base"]


def pair(
    judge: str | None,
    human: str | None = None,
    *,
    generator: str = "flux",
    dimensions: tuple[str, ...] = ("blur",),
    intensity: str = "mild",
    consistent: bool | None = True,
    pair_id: str = "p",
) -> JudgedPair:
    return JudgedPair(pair_id, judge, human, generator, dimensions, intensity, consistent)


def test_hand_computed_accuracy_kappas_and_confusion() -> None:
    a = agreement(JUDGE, HUMAN, seed=0, rounds=200)
    assert a is not None and a.n == 6
    # Confusion, human rows x judge columns in base < tie < anti order:
    #   base: [2, 0, 0]   tie: [0, 1, 0]   anti: [1, 1, 1]
    assert a.confusion == {
        "base": {"base": 2, "tie": 0, "anti": 0},
        "tie": {"base": 0, "tie": 1, "anti": 0},
        "anti": {"base": 1, "tie": 1, "anti": 1},
    }
    assert a.accuracy.value == pytest.approx(4 / 6)  # the diagonal: 2 + 1 + 1
    # Human marginals (2, 1, 3), judge marginals (3, 2, 1): p_e = (2·3 + 1·2 + 3·1) / 36 = 11/36,
    # kappa = (24/36 − 11/36) / (1 − 11/36) = 13/25.
    assert a.kappa is not None and a.kappa.value == pytest.approx(13 / 25)
    # Quadratic weights (i − j)²: observed weighted disagreement 4·1 (anti→base) + 1·1 (anti→tie) = 5 pairs;
    # expected counts outer((2,1,3), (3,2,1)) / 6, weighted: (1·4 + 4·2 + 1·3 + 1·1 + 4·9 + 1·6) / 6 = 58/6;
    # kappa = 1 − 5 / (58/6) = 1 − 30/58 = 14/29.
    assert a.quadratic_kappa is not None and a.quadratic_kappa.value == pytest.approx(14 / 29)


def test_confusion_rows_are_human_and_columns_judge() -> None:
    a = agreement(["anti", "anti", "base"], ["base", "tie", "base"], seed=0, rounds=50)
    assert a is not None
    assert a.confusion["base"]["anti"] == 1 and a.confusion["anti"]["base"] == 0
    assert a.confusion["tie"]["anti"] == 1 and a.confusion["anti"]["tie"] == 0
    assert list(a.confusion) == list(LABELS) and list(a.confusion["tie"]) == list(LABELS)


def test_only_pairs_with_both_verdicts_count() -> None:
    judge = [*JUDGE, None, "anti", "tie"]
    human = [*HUMAN, "anti", None, "unresolved"]
    a, b = agreement(judge, human, seed=1, rounds=200), agreement(JUDGE, HUMAN, seed=1, rounds=200)
    assert a is not None and a.n == 6 and a == b
    assert agreement([None, "anti"], ["tie", "unresolved"], seed=0) is None
    with pytest.raises(ValueError, match="3 judge labels against 2"):
        agreement(["anti"] * 3, ["anti"] * 2, seed=0)
    with pytest.raises(ValueError, match="'better'"):
        agreement(["better"], ["anti"], seed=0)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_kappas_match_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    human = rng.choice(LABELS, size=40)
    # A judge that agrees more often than chance, so the kappas are not all near 0.
    judge = np.where(rng.random(40) < 0.6, human, rng.choice(LABELS, size=40))
    a = agreement(list(judge), list(human), seed=seed, rounds=50)
    assert a is not None and a.kappa is not None and a.quadratic_kappa is not None
    labels = list(LABELS)
    assert a.kappa.value == pytest.approx(cohen_kappa_score(human, judge, labels=labels))
    assert a.quadratic_kappa.value == pytest.approx(cohen_kappa_score(human, judge, labels=labels, weights="quadratic"))
    counts = confusion_matrix(human, judge, labels=labels)
    assert measures.kappa(counts, weights="linear") == pytest.approx(
        cohen_kappa_score(human, judge, labels=labels, weights="linear")
    )


def test_undefined_kappa_is_none_never_zero_or_nan() -> None:
    # Humans always "anti", the judge varies: scikit-learn says 0 whatever the agreement, which says nothing.
    human, judge = ["anti"] * 4, ["anti", "anti", "anti", "tie"]
    assert cohen_kappa_score(human, judge, labels=list(LABELS)) == 0.0
    a = agreement(judge, human, seed=0, rounds=100)
    assert a is not None and a.kappa is None and a.quadratic_kappa is None
    assert a.accuracy.value == pytest.approx(3 / 4)
    # Both raters on one label: 0/0 (scikit-learn: nan with a warning).
    b = agreement(["tie"] * 3, ["tie"] * 3, seed=0, rounds=100)
    assert b is not None and b.kappa is None and b.quadratic_kappa is None and b.accuracy.value == 1.0
    assert measures.kappa(np.zeros((3, 3))) is None


def test_bootstrap_intervals_contain_the_figure_and_are_seeded() -> None:
    judge, human = JUDGE * 6, HUMAN * 6
    first = agreement(judge, human, seed=7, rounds=300)
    again = agreement(judge, human, seed=7, rounds=300)
    other = agreement(judge, human, seed=8, rounds=300)
    assert first is not None and first == again and first != other
    for figure in (first.accuracy, first.kappa, first.quadratic_kappa):
        assert figure is not None and figure.low is not None and figure.high is not None
        assert figure.low <= figure.value <= figure.high and figure.low < figure.high


def test_breakdowns_count_a_two_dimension_pair_in_each() -> None:
    items = [
        pair("anti", "anti", dimensions=("blur", "noise"), intensity="mild"),
        pair("base", "anti", dimensions=("blur",), intensity="extreme"),
        pair("tie", "tie", dimensions=("noise",), intensity="extreme"),
        pair("anti", None, dimensions=("grain",), intensity="mild"),  # no human verdict: no overlap for grain
        pair(None, "anti", dimensions=("blur",), intensity="mild", consistent=False),  # read as a tie
    ]
    by_dimension = agreement_by(items, "dimension", seed=0, rounds=50)
    assert list(by_dimension) == ["blur", "noise"]
    assert by_dimension["blur"].n == 3 and by_dimension["blur"].accuracy.value == pytest.approx(1 / 3)
    assert by_dimension["noise"].n == 2 and by_dimension["noise"].accuracy.value == pytest.approx(1.0)
    by_intensity = agreement_by(items, "intensity", seed=0, rounds=50)
    assert {k: v.n for k, v in by_intensity.items()} == {"extreme": 2, "mild": 2}
    assert by_intensity["extreme"].confusion["anti"]["base"] == 1


def test_flip_rate_counts_pairs_judged_in_both_orders() -> None:
    items = [
        pair("anti"),
        pair("tie"),
        pair("base"),
        pair(None, consistent=False),
        pair("anti", consistent=None),  # one order only: no position check
    ]
    flips = flip_rate(items)
    assert (flips.checked, flips.flipped) == (4, 1)
    assert flips.rate == measures.wilson(1, 4) and flips.rate is not None and flips.rate.value == 0.25
    assert flip_rate([pair("anti", consistent=None)]).rate is None


def test_success_rate_keeps_ties_in_the_denominator_and_inconsistent_pairs_out() -> None:
    flux = [pair("anti"), pair("anti"), pair("anti", consistent=None), pair("tie"), pair("base")]
    flux += [pair(None, consistent=False), pair(None, consistent=False), pair(None, consistent=None)]
    banana = [pair(None, generator="banana", consistent=False)]
    rates = success_rates(flux + banana)
    assert list(rates) == ["banana", "flux"]
    f = rates["flux"]
    # 5 verdicts: 3 anti, 1 tie, 1 base; 2 inconsistent and 1 unjudged pair are not among them.
    assert (f.judged, f.anti, f.tie, f.base, f.inconsistent) == (5, 3, 1, 1, 2)
    assert f.rate == measures.wilson(3, 5) and f.rate is not None and f.rate.value == pytest.approx(0.6)
    assert f.tie_share == pytest.approx(0.2) and f.base_share == pytest.approx(0.2)
    b = rates["banana"]
    assert b.judged == 0 and b.inconsistent == 1 and b.rate is None and b.tie_share is None


def test_wilson_against_textbook_values() -> None:
    # 8/10: centre (0.8 + 1.96²/20) / (1 + 1.96²/10) = 0.7168, half-width 0.2266 -> (0.490, 0.943).
    w = measures.wilson(8, 10)
    assert w is not None and w.value == 0.8
    assert w.low == pytest.approx(0.4902, abs=1e-4) and w.high == pytest.approx(0.9433, abs=1e-4)
    # 0/10: the interval still has width: (0, 1.96² / (10 + 1.96²)) = (0, 0.2775).
    zero = measures.wilson(0, 10)
    assert zero is not None and zero.low == pytest.approx(0.0) and zero.high == pytest.approx(0.2775, abs=1e-4)
    wider = measures.wilson(8, 10, level=0.99)
    assert wider is not None and wider.low is not None and w.low is not None and wider.low < w.low
    assert measures.wilson(0, 0) is None
    with pytest.raises(ValueError):
        measures.wilson(11, 10)


def test_gate_gives_the_measured_and_required_figures() -> None:
    found = agreement(JUDGE, HUMAN, seed=0, rounds=50)  # quadratic kappa 14/29 = 0.483 on 6 pairs
    assert found is not None and found.quadratic_kappa is not None
    standing = Standing(found.n, found.quadratic_kappa.value)
    assert gate(standing, min_kappa=0.4, min_overlap=6) is None
    few = gate(standing, min_kappa=0.4, min_overlap=50)
    assert few is not None and "\n" not in few
    assert "0.483" in few and "6 overlapping pairs" in few and "judge.min_overlap = 50" in few
    weak = gate(standing, min_kappa=0.6, min_overlap=6)
    assert weak is not None and "0.483" in weak and "judge.min_kappa = 0.6" in weak
    undefined = gate(Standing(9, None), min_kappa=0.6, min_overlap=5)
    assert undefined is not None and "kappa against humans is undefined on 9 overlapping pairs" in undefined


def test_agreement_reads_a_flipped_choice_as_a_tie() -> None:
    items = [
        JudgedPair("a", "anti", "anti", "g", ("x",), "mild"),
        JudgedPair("b", None, "tie", "g", ("x",), "mild", consistent=False),
        JudgedPair("c", None, "anti", "g", ("x",), "mild", consistent=False),
    ]
    (figures,) = agreement_by(items, "intensity", seed=0, rounds=50).values()
    assert figures.n == 3  # the flipped pairs count, as ties
    assert figures.confusion["tie"]["tie"] == 1 and figures.confusion["anti"]["tie"] == 1


def test_a_pair_states_its_verdicts_coherently() -> None:
    with pytest.raises(ValueError, match="not one of"):
        pair("A")
    with pytest.raises(ValueError, match="not one of"):
        pair("anti", "maybe")
    with pytest.raises(ValueError, match="inconsistent pair has no judge verdict"):
        pair("anti", consistent=False)
    with pytest.raises(ValueError, match="needs its judge verdict"):
        pair(None, consistent=True)
    assert pair("anti", "unresolved").human == "unresolved"
