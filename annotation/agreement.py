"""Resolving a round (pure): majority verdicts with votes, Krippendorff's alpha per question, annotator accuracy
on gold tasks and agreement with the majority, and exclusion of annotators under a gold-accuracy floor."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import krippendorff
import numpy as np

Record = dict[str, Any]
FLAGS = ("unsafe", "broken_image")
ALPHA_QUESTIONS = ("choice", "qualities", "subject_kept", "flags")


@dataclass(frozen=True)
class AnnotatorStats:
    annotator: str
    answers: int
    gold_answers: int
    gold_correct: int
    agreement_with_majority: float | None
    excluded: bool

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_answers if self.gold_answers else None


@dataclass(frozen=True)
class RoundResult:
    verdicts: list[Record]  # verdict fields without id and created_at
    alpha: dict[str, float | None]
    annotators: list[AnnotatorStats]


def majority(votes: Mapping[str, int], min_votes: int) -> tuple[str, float | None]:
    """The label with a strict majority of the votes, else `unresolved`; with the winner's share of votes."""
    total = sum(votes.values())
    if total == 0:
        return "unresolved", None
    label, top = max(sorted(votes.items()), key=lambda item: item[1])
    if total < min_votes or top * 2 <= total:
        return "unresolved", top / total
    return label, top / total


def nominal_alpha(units: Mapping[Hashable, Mapping[str, Hashable]]) -> float | None:
    """Krippendorff's alpha (nominal) over units → {annotator: value}; None when it is undefined."""
    annotators = sorted({a for answers in units.values() for a in answers})
    domain = sorted({str(v) for answers in units.values() for v in answers.values()})
    if len(annotators) < 2 or not units:
        return None
    codes = {v: i for i, v in enumerate(domain)}
    data = np.full((len(annotators), len(units)), np.nan)
    row = {a: i for i, a in enumerate(annotators)}
    for col, answers in enumerate(units.values()):
        for annotator, value in answers.items():
            data[row[annotator], col] = codes[str(value)]
    try:
        value = float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
    except (ValueError, ZeroDivisionError):
        return None
    return None if math.isnan(value) else value


def _answered(annotations: Iterable[Record]) -> list[Record]:
    return [a for a in annotations if a["choice"] is not None or a["qualities"] or a["subject_kept"] is not None]


def resolve_round(
    annotations: Iterable[Record],
    dimensions: Mapping[str, list[str]],
    *,
    min_votes: int,
    min_gold_accuracy: float,
    regular: Iterable[str] = (),
) -> RoundResult:
    """Verdicts for every regular pair (those in `regular` and every non-gold pair answered), alpha, annotators.

    `dimensions` maps each pair to the dimensions its variant asked for. Gold annotations carry `gold_label`
    (the known answer); they score annotators and take no part in verdicts or alpha.
    """
    answered = _answered(annotations)
    gold = [a for a in answered if a["gold"]]
    plain = [a for a in answered if not a["gold"]]
    gold_total: Counter[str] = Counter(a["annotator"] for a in gold if a["choice"] is not None)
    gold_correct: Counter[str] = Counter(a["annotator"] for a in gold if a["choice"] == a.get("gold_label"))
    excluded = {name for name, total in gold_total.items() if total and gold_correct[name] / total < min_gold_accuracy}
    counted = [a for a in plain if a["annotator"] not in excluded]
    by_pair: dict[str, list[Record]] = defaultdict(list)
    for answer in counted:
        by_pair[answer["subject_id"]].append(answer)
    pairs = sorted(set(regular) | {a["subject_id"] for a in plain})
    verdicts = [_verdict(pair, by_pair.get(pair, []), dimensions.get(pair, []), min_votes) for pair in pairs]
    labels = {v["subject_id"]: v["label"] for v in verdicts}
    stats = []
    for name in sorted({a["annotator"] for a in answered}):
        mine = [a for a in plain if a["annotator"] == name and a["choice"] is not None]
        judged = [a for a in mine if labels.get(a["subject_id"], "unresolved") != "unresolved"]
        agree = sum(a["choice"] == labels[a["subject_id"]] for a in judged)
        stats.append(
            AnnotatorStats(
                annotator=name,
                answers=len(mine),
                gold_answers=gold_total[name],
                gold_correct=gold_correct[name],
                agreement_with_majority=agree / len(judged) if judged else None,
                excluded=name in excluded,
            )
        )
    alpha = _alpha_per_question(counted, dimensions)
    return RoundResult([{**v, "alpha": alpha} for v in verdicts], alpha, stats)


def _verdict(pair: str, answers: list[Record], dims: list[str], min_votes: int) -> Record:
    votes = Counter(a["choice"] for a in answers if a["choice"] is not None)
    label, agreement = majority(votes, min_votes)
    return {
        "subject_id": pair,
        "label": label,
        "votes": dict(sorted(votes.items())),
        "agreement": agreement,
        "annotators": len({a["annotator"] for a in answers}),
        "qualities": {d: sum(d in a["qualities"] for a in answers) for d in dims},
        "subject_kept": {
            "yes": sum(a["subject_kept"] is True for a in answers),
            "no": sum(a["subject_kept"] is False for a in answers),
        },
        "flags": {f: sum(f in a["flags"] for a in answers) for f in FLAGS},
    }


def _alpha_per_question(answers: list[Record], dimensions: Mapping[str, list[str]]) -> dict[str, float | None]:
    units: dict[str, dict[Hashable, dict[str, Hashable]]] = {q: defaultdict(dict) for q in ALPHA_QUESTIONS}
    for a in answers:
        pair, who = a["subject_id"], a["annotator"]
        if a["choice"] is not None:
            units["choice"][pair][who] = a["choice"]
            for dim in dimensions.get(pair, []):
                units["qualities"][(pair, dim)][who] = dim in a["qualities"]
        if a["subject_kept"] is not None:
            units["subject_kept"][pair][who] = a["subject_kept"]
        for flag in FLAGS:
            units["flags"][(pair, flag)][who] = flag in a["flags"]
    return {q: nominal_alpha(units[q]) for q in ALPHA_QUESTIONS}
