"""The pure parts of human rounds: round planning, majority and alpha, labeling config and answer mapping."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from annotation import labeling
from annotation.agreement import GoldFloor, majority, resolve_round
from annotation.reliability import alpha_interval, nominal_alpha, pairwise_kappa
from annotation.rounds import plan_round
from curation.core.measures import wilson
from curation.core.workspace import Workspace

OUTCOMES = {f"{i:016x}": ("review", "accept", "reject")[i % 3] for i in range(30)}


def _plan(**overrides: Any) -> Any:
    args: dict[str, Any] = {
        "requeued": [],
        "done": set(),
        "gold_pool": {},
        "pairs_per_round": 10,
        "rejected_rate": 0.2,
        "gold_rate": 0.0,
        "seed": 0,
    }
    return plan_round(2, OUTCOMES, **(args | overrides))


def test_plan_asks_requeued_then_review_then_accepted_plus_a_rejected_sample() -> None:
    requeued = ["00000000000000ff"]
    plan = _plan(requeued=requeued)
    regular = plan.regular
    assert len(regular) == 10 and set(requeued) <= set(regular)
    kinds = [OUTCOMES.get(p, "requeued") for p in regular]
    # 8 non-rejected slots: the re-queued pair + 7 of the 10 review pairs; then 2 rejected for calibration.
    assert sorted(kinds) == sorted(["requeued"] + ["review"] * 7 + ["reject"] * 2)
    assert _plan(requeued=requeued).tasks == plan.tasks  # seeded
    assert _plan(requeued=requeued, seed=1).tasks != plan.tasks


def test_plan_skips_done_pairs_and_mixes_in_gold_at_the_rate() -> None:
    review = [p for p, o in OUTCOMES.items() if o == "review"]
    gold_pool = {p: "anti" for p in list(OUTCOMES)[:12]}
    plan = _plan(done=set(review), gold_pool=gold_pool, gold_rate=0.5, rejected_rate=0.0)
    assert not set(plan.regular) & set(review)
    assert {OUTCOMES[p] for p in plan.regular} == {"accept"}
    assert len(plan.regular) == 10 and len(plan.gold) == 5
    assert not set(plan.gold) & set(plan.regular) and set(plan.gold.values()) == {"anti"}
    # Gold tasks are shuffled among the regular ones, not appended.
    assert [g is not None for _p, g in plan.tasks] != [False] * 10 + [True] * 5


@pytest.mark.parametrize(
    ("votes", "min_votes", "expected"),
    [
        ({"anti": 2, "base": 1}, 2, ("anti", 2 / 3)),
        ({"anti": 1, "base": 1}, 2, ("unresolved", 1 / 2)),
        ({"anti": 1, "base": 1, "tie": 1}, 2, ("unresolved", 1 / 3)),
        ({"tie": 1}, 2, ("unresolved", 1.0)),
        ({"tie": 1}, 1, ("tie", 1.0)),
        ({}, 1, ("unresolved", None)),
    ],
)
def test_majority_needs_more_than_half_of_enough_votes(
    votes: dict[str, int], min_votes: int, expected: tuple[str, float | None]
) -> None:
    assert majority(votes, min_votes) == expected


def test_nominal_alpha_matches_hand_computation() -> None:
    # Units × annotators; by hand (see test_annotation_rounds): alpha = 1 - 5 / (82/11) = 27/82.
    units = {
        ("1", ""): {"x": "a", "y": "a", "z": "a"},
        ("2", ""): {"x": "a", "y": "a", "z": "b"},
        ("3", ""): {"x": "b", "y": "b", "z": "b"},
        ("4", ""): {"x": "a", "y": "b", "z": "t"},
    }
    assert nominal_alpha(units) == pytest.approx(27 / 82)
    assert nominal_alpha({("1", ""): {"x": "a", "y": "a"}, ("2", ""): {"x": "b", "y": "b"}}) == pytest.approx(1.0)
    assert nominal_alpha({("1", ""): {"x": "a", "y": "a"}}) is None  # one value only: undefined
    assert nominal_alpha({("1", ""): {"x": "a"}, ("2", ""): {"y": "b"}}) is None  # nothing pairable


def _answer(pair: str, who: str, choice: str | None, *, gold: str | None = None) -> dict[str, Any]:
    return {
        "subject_id": pair,
        "annotator": who,
        "gold": gold is not None,
        "gold_label": gold,
        "choice": choice,
        "qualities": ["blurry"] if choice == "anti" else [],
        "subject_kept": True,
        "flags": [],
    }


def test_resolve_round_scores_and_excludes_annotators_by_gold() -> None:
    answers = [_answer("p1", w, c) for w, c in (("a", "anti"), ("b", "anti"), ("c", "base"))]
    answers += [_answer("g1", w, c, gold="anti") for w, c in (("a", "anti"), ("b", "anti"), ("c", "base"))]
    loose = GoldFloor(accuracy=0.0, answers=1)
    kept = resolve_round(answers, {"p1": ["blurry"]}, min_votes=2, floor=loose, seed=0, regular=["p1", "p2"])
    verdicts = {v["subject_id"]: v for v in kept.verdicts}
    assert set(verdicts) == {"p1", "p2"}  # gold pairs get none; unanswered p2 is unresolved
    assert verdicts["p1"]["label"] == "anti" and verdicts["p1"]["qualities"] == {"blurry": 2}
    assert verdicts["p2"] == {**verdicts["p2"], "label": "unresolved", "agreement": None, "annotators": 0}
    assert [(a.annotator, a.gold_accuracy, a.excluded) for a in kept.annotators] == [
        ("a", 1.0, False),
        ("b", 1.0, False),
        ("c", 0.0, False),
    ]
    strict = resolve_round(answers, {"p1": ["blurry"]}, min_votes=2, floor=GoldFloor(0.5, 1), seed=0)
    assert strict.verdicts[0]["votes"] == {"anti": 2} and strict.verdicts[0]["annotators"] == 2
    assert [a.excluded for a in strict.annotators] == [False, False, True]
    assert [a.annotator for a in strict.excluded] == ["c"] and "0 gold answers" not in (strict.excluded[0].reason or "")
    # The floor waits for enough gold answers: one wrong answer out of one is not yet evidence.
    patient = resolve_round(answers, {"p1": ["blurry"]}, min_votes=2, floor=GoldFloor(0.5, 2), seed=0)
    assert not patient.excluded and patient.verdicts[0]["votes"] == {"anti": 2, "base": 1}


def test_labeling_config_is_xml_with_every_question() -> None:
    root = ET.fromstring(labeling.label_config())
    names = {el.get("name") for el in root.iter() if el.get("name")}
    assert {
        "prompt",
        "base_prompt",
        "image_a",
        "image_b",
        "choice",
        "qualities",
        "subject_kept",
        "flags",
        "comment",
    } <= names
    aliases = {el.get("alias") for el in root.iter("Choice")}
    assert {"a", "b", "tie", "yes", "no", "unsafe", "broken_image"} == aliases
    hotkeys = {el.get("alias"): el.get("hotkey") for el in root.iter("Choice") if el.get("hotkey")}
    assert hotkeys == {"a": "1", "b": "2", "tie": "3", "yes": "y", "no": "n"}


def test_ab_order_is_seeded_and_balanced_and_undone() -> None:
    orders = [labeling.ab_order(0, 1, f"{i:016x}") for i in range(400)]
    assert orders == [labeling.ab_order(0, 1, f"{i:016x}") for i in range(400)]
    assert 160 < orders.count("anti_first") < 240
    assert orders != [labeling.ab_order(0, 2, f"{i:016x}") for i in range(400)]
    payload = labeling.task_payload(
        "p", "anti text", "base text", "/anti.png", "/base.png", ["blurry"], {"blurry": "Blurry"}, "base_first"
    )
    assert (payload["image_a"], payload["image_b"]) == ("/base.png", "/anti.png")
    assert payload["qualities"] == [{"value": "Blurry"}]
    assert labeling.undo_order("a", "base_first") == "base" and labeling.undo_order("b", "base_first") == "anti"
    assert labeling.undo_order("a", "anti_first") == "anti" and labeling.undo_order("tie", "anti_first") == "tie"


def test_parse_result_maps_answers_back_to_record_fields() -> None:
    def region(name: str, **value: Any) -> dict[str, Any]:
        return {"from_name": name, "to_name": "image_a", "value": value}

    result = [
        region("choice", choices=["b"]),
        region("qualities", choices=["Blurry", "Unknown"]),
        region("subject_kept", choices=["no"]),
        region("flags", choices=["broken_image"]),
        region("comment", text=["  smeared  "]),
    ]
    parsed = labeling.parse_result(result, "anti_first", ["blurry", "decay"], {"blurry": "Blurry", "decay": "Decay"})
    assert parsed == {
        "choice": "base",
        "qualities": ["blurry"],
        "subject_kept": False,
        "flags": ["broken_image"],
        "comment": "smeared",
    }
    empty = labeling.parse_result([], "anti_first", [], {})
    assert empty == {"choice": None, "qualities": [], "subject_kept": None, "flags": [], "comment": None}


def test_dimension_names_come_from_the_taxonomy() -> None:
    names = labeling.dimension_names()
    assert names["blurry"] == "Blurry" and len(names) >= 50


def test_status_counts_pairs_waiting_for_human_judgement(workspace: Workspace) -> None:
    from curation.app.status import summary
    from tests.dataset_fixtures import populate

    pairs = populate(workspace, 6)  # verdicts (label anti) for pairs 0, 2, 4
    outcomes = {d["subject_id"]: d["outcome"] for d in workspace.store.iter("decision", stage="clip")}
    expected = sum(1 for i, p in enumerate(pairs) if i % 2 and outcomes[p] in ("accept", "review"))
    assert 0 < expected < 6 and summary(workspace)["pending"]["annotate"] == expected


def test_gold_floor_applies_after_enough_answers_and_says_why() -> None:
    floor = GoldFloor(accuracy=0.6, answers=5)
    assert floor.reason(1, 4) is None  # 25% on 4 answers: too few to judge
    assert floor.reason(3, 5) is None  # exactly at the floor
    reason = floor.reason(2, 5)
    interval = wilson(2, 5)
    assert interval is not None and reason is not None
    assert f"{interval.low:.2f}–{interval.high:.2f}" in reason and "on 5 gold answers" in reason and "0.40" in reason


def _random_units(rng: np.random.Generator, n_units: int, agree: float) -> dict[tuple[str, str], dict[str, str]]:
    """Units answered by 2–4 of 5 annotators: the unit's true value with probability `agree`, else random."""
    units = {}
    for u in range(n_units):
        truth = rng.choice(["anti", "base", "tie"])
        who = rng.choice(["a", "b", "c", "d", "e"], size=rng.integers(2, 5), replace=False)
        units[(f"{u:04d}", "")] = {
            str(w): str(truth if rng.random() < agree else rng.choice(["anti", "base", "tie"])) for w in who
        }
    return units


def test_nominal_alpha_equals_the_krippendorff_package_with_missing_values() -> None:
    rng = np.random.default_rng(3)
    for agree in (0.2, 0.6, 0.9):
        units = _random_units(rng, 60, agree)
        annotators = sorted({w for answers in units.values() for w in answers})
        codes = {"anti": 0, "base": 1, "tie": 2}
        data = np.full((len(annotators), len(units)), np.nan)
        for col, answers in enumerate(units.values()):
            for who, value in answers.items():
                data[annotators.index(who), col] = codes[value]
        expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
        assert nominal_alpha(units) == pytest.approx(expected)


def test_alpha_interval_is_seeded_covers_the_value_and_narrows_with_more_pairs() -> None:
    rng = np.random.default_rng(5)
    small, large = _random_units(rng, 40, 0.7), _random_units(rng, 640, 0.7)
    first = alpha_interval(small, seed=1)
    assert first is not None and first.low is not None and first.high is not None
    assert first.value == pytest.approx(nominal_alpha(small))
    assert first.low < first.value < first.high
    assert alpha_interval(small, seed=1) == first and alpha_interval(small, seed=2) != first
    wide = alpha_interval(large, seed=1)
    assert wide is not None and wide.low is not None and wide.high is not None
    assert wide.high - wide.low < (first.high - first.low) / 2
    # A pair's parts (its qualities) are resampled together: asking every question twice adds no evidence and
    # keeps the interval as wide, where resampling parts alone would narrow it by about √2.
    doubled = {(pair, part): answers for (pair, _p), answers in small.items() for part in ("x", "y")}
    twice = alpha_interval(doubled, seed=1)
    assert twice is not None and twice.low is not None and twice.high is not None
    assert twice.value == pytest.approx(first.value, abs=0.01)
    assert twice.high - twice.low == pytest.approx(first.high - first.low, rel=0.1)
    assert alpha_interval({}, seed=1) is None


def test_pairwise_kappa_needs_enough_shared_tasks_and_equals_scikit_learn() -> None:
    rng = np.random.default_rng(7)
    choices = ["anti", "base", "tie"]
    tasks: dict[str, dict[str, str]] = {}
    for t in range(30):
        truth = str(rng.choice(choices))
        answers = {"a": truth, "b": truth if rng.random() < 0.7 else str(rng.choice(choices))}
        if t < 19:
            answers["c"] = str(rng.choice(choices))  # c shares 19 tasks with each: too few
        tasks[f"t{t}"] = answers
    (pair,) = pairwise_kappa(tasks)
    assert (pair.first, pair.second, pair.shared) == ("a", "b", 30)
    expected = cohen_kappa_score([tasks[t]["a"] for t in tasks], [tasks[t]["b"] for t in tasks], labels=choices)
    assert pair.kappa == pytest.approx(expected)
    assert {(k.first, k.second) for k in pairwise_kappa(tasks, min_shared=19)} == {("a", "b"), ("a", "c"), ("b", "c")}
