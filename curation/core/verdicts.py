"""What verdict records say (pure): which one of a pair's verdicts stands (the latest round's), and what a round's
records say about the round as a whole: its Krippendorff's alpha per question with the bootstrap interval, as
`widespec annotate resolve` computed them over every pair the round asked."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from curation.core.intervals import Interval, interval_text
from curation.core.store import Record

ALPHA_QUESTIONS = ("choice", "qualities", "subject_kept", "flags")


def latest_verdict(verdicts: Iterable[Record]) -> Record | None:
    """The verdict that stands among one pair's: the latest round's, the most recently written within it (ties
    broken by id, so the choice is deterministic)."""
    return max(verdicts, key=lambda v: (v["round"], v["created_at"], v["id"]), default=None)


@dataclass(frozen=True)
class RoundAgreement:
    """One round: how many pairs it resolved (or left unresolved) and alpha per question with its interval."""

    round: int
    pairs: int
    alpha: dict[str, float | None]
    interval: dict[str, tuple[float, float] | None]

    def describe(self) -> str:
        """'choice 0.620 [0.510, 0.710], qualities n/a, …' (n/a: undefined, or resolved before alpha was kept)."""
        parts = []
        for question in ALPHA_QUESTIONS:
            value, interval = self.alpha.get(question), self.interval.get(question)
            figure = None if value is None else Interval(value, *(interval or (None, None)))
            parts.append(f"{question} {interval_text(figure, missing='n/a')}")
        return ", ".join(parts)


def round_agreement(verdicts: Iterable[Mapping[str, Any]]) -> list[RoundAgreement]:
    """Per round, in order: the figures of its latest resolve (every verdict of a resolve carries the same)."""
    latest: dict[int, Mapping[str, Any]] = {}
    pairs: dict[int, int] = {}
    for verdict in verdicts:
        number = int(verdict["round"])
        pairs[number] = pairs.get(number, 0) + 1
        if number not in latest or verdict["created_at"] > latest[number]["created_at"]:
            latest[number] = verdict
    rounds = []
    for number in sorted(latest):
        alpha = latest[number].get("alpha") or {}
        interval = latest[number].get("alpha_interval") or {}
        rounds.append(
            RoundAgreement(
                number,
                pairs[number],
                {q: alpha.get(q) for q in ALPHA_QUESTIONS},
                {q: tuple(interval[q]) if interval.get(q) else None for q in ALPHA_QUESTIONS},
            )
        )
    return rounds
