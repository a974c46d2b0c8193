"""Resolving a round (pure): majority verdicts with votes, Krippendorff's alpha per question with its interval,
annotator accuracy on gold tasks (Wilson interval) and agreement with the majority, exclusion of annotators under a
gold-accuracy floor once they answered enough gold tasks, and Cohen's kappa between annotators."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from annotation.reliability import KappaPair, alpha_interval, pairwise_kappa
from curation.core.measures import Interval, wilson
from curation.core.verdicts import ALPHA_QUESTIONS

Record = dict[str, Any]
FLAGS = ("unsafe", "broken_image")


@dataclass(frozen=True)
class AnnotatorStats:
    annotator: str
    answers: int
    gold_answers: int
    gold_correct: int
    agreement_with_majority: float | None
    excluded: bool
    reason: str | None = None  # why the annotator's answers were left out

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_answers if self.gold_answers else None

    @property
    def gold_interval(self) -> Interval | None:
        """Gold accuracy with its Wilson 95% interval."""
        return wilson(self.gold_correct, self.gold_answers)


@dataclass(frozen=True)
class RoundResult:
    verdicts: list[Record]  # verdict fields without id and created_at
    alpha: dict[str, Interval | None]  # per question, over every counted answer of the round
    annotators: list[AnnotatorStats]
    kappa: list[KappaPair]  # annotators with enough shared tasks

    @property
    def excluded(self) -> list[AnnotatorStats]:
        return [a for a in self.annotators if a.excluded]


@dataclass(frozen=True)
class GoldFloor:
    """Annotators under `accuracy` on gold tasks are left out, once they answered at least `answers` of them."""

    accuracy: float
    answers: int

    def reason(self, correct: int, answered: int) -> str | None:
        """Why an annotator with `correct` of `answered` gold answers right is excluded; None when kept."""
        if answered < self.answers or correct / answered >= self.accuracy:
            return None
        interval = wilson(correct, answered)
        assert interval is not None and interval.low is not None and interval.high is not None
        return (
            f"gold accuracy {interval.value:.2f} (95% CI {interval.low:.2f}–{interval.high:.2f}) on {answered} gold "
            f"answers, under min_gold_accuracy {self.accuracy:g}"
        )


def majority(votes: Mapping[str, int], min_votes: int) -> tuple[str, float | None]:
    """The label with a strict majority of the votes, else `unresolved`; with the winner's share of votes."""
    total = sum(votes.values())
    if total == 0:
        return "unresolved", None
    label, top = max(sorted(votes.items()), key=lambda item: item[1])
    if total < min_votes or top * 2 <= total:
        return "unresolved", top / total
    return label, top / total


def _answered(annotations: Iterable[Record]) -> list[Record]:
    return [a for a in annotations if a["choice"] is not None or a["qualities"] or a["subject_kept"] is not None]


def resolve_round(
    annotations: Iterable[Record],
    dimensions: Mapping[str, list[str]],
    *,
    min_votes: int,
    floor: GoldFloor,
    seed: int,
    regular: Iterable[str] = (),
) -> RoundResult:
    """Verdicts for every regular pair (those in `regular` and every non-gold pair answered), alpha, annotators.

    `dimensions` maps each pair to the dimensions its variant asked for. Gold annotations carry `gold_label`
    (the known answer); they score annotators and take no part in verdicts or alpha. Excluded annotators' answers
    count in neither; `seed` seeds the alpha intervals.
    """
    answered = _answered(annotations)
    gold = [a for a in answered if a["gold"]]
    plain = [a for a in answered if not a["gold"]]
    gold_total: Counter[str] = Counter(a["annotator"] for a in gold if a["choice"] is not None)
    gold_correct: Counter[str] = Counter(a["annotator"] for a in gold if a["choice"] == a.get("gold_label"))
    reasons = {name: floor.reason(gold_correct[name], total) for name, total in gold_total.items()}
    excluded = {name for name, reason in reasons.items() if reason}
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
                reason=reasons.get(name),
            )
        )
    alpha = _alpha_per_question(counted, dimensions, seed)
    figures = {
        "alpha": {q: i.value if i else None for q, i in alpha.items()},
        "alpha_interval": {q: [i.low, i.high] if i and i.low is not None else None for q, i in alpha.items()},
    }
    tasks: dict[str, dict[str, str]] = defaultdict(dict)
    for a in answered:
        if a["choice"] is not None:
            tasks[a["subject_id"]][a["annotator"]] = a["choice"]
    return RoundResult([{**v, **figures} for v in verdicts], alpha, stats, pairwise_kappa(tasks))


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


def _alpha_per_question(
    answers: list[Record], dimensions: Mapping[str, list[str]], seed: int
) -> dict[str, Interval | None]:
    units: dict[str, dict[tuple[str, str], dict[str, Hashable]]] = {q: defaultdict(dict) for q in ALPHA_QUESTIONS}
    for a in answers:
        pair, who = a["subject_id"], a["annotator"]
        if a["choice"] is not None:
            units["choice"][(pair, "")][who] = a["choice"]
            for dim in dimensions.get(pair, []):
                units["qualities"][(pair, dim)][who] = dim in a["qualities"]
        if a["subject_kept"] is not None:
            units["subject_kept"][(pair, "")][who] = a["subject_kept"]
        for flag in FLAGS:
            units["flags"][(pair, flag)][who] = flag in a["flags"]
    return {q: alpha_interval(units[q], seed=seed) for q in ALPHA_QUESTIONS}
