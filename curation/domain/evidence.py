"""Reading what is written about pairs: each current pair with its scores, decisions, verdicts and the configured
judge's judgment, fetched in batches with indexed queries, in pair-id order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from curation.core.judges import JudgeIdentity, current_judgments
from curation.core.pairs import Pair, iter_pairs
from curation.core.store import Record, Store
from curation.domain.fate import Evidence, Fate, RowsMode, fate

FETCH_BATCH = 500


@dataclass(frozen=True)
class PairRecords:
    """One pair with every record the stages after generation wrote about it (subject_id = pair id; text
    decisions are about its variant and apply to each of its pairs)."""

    pair: Pair
    scores: list[Record] = field(default_factory=list)
    decisions: list[Record] = field(default_factory=list)
    verdicts: list[Record] = field(default_factory=list)
    judgment: Record | None = None  # the configured judge's, when one is configured

    @property
    def evidence(self) -> Evidence:
        return Evidence(self.decisions, self.verdicts, self.judgment)

    def fate(self, mode: RowsMode) -> Fate:
        return fate(self.evidence, mode)


def _by_subject(store: Store, kind: str, subject_ids: list[str]) -> dict[str, list[Record]]:
    grouped: dict[str, list[Record]] = {}
    for record in store.iter(kind, subject_id=subject_ids):
        grouped.setdefault(record["subject_id"], []).append(record)
    return grouped


def pair_records(
    store: Store, judge: JudgeIdentity | None = None, *, batch: int = FETCH_BATCH, scores: bool = True
) -> tuple[int, Iterator[PairRecords]]:
    """How many current pairs there are, and each one with the records written about it (fetched in batches),
    with the judgment of `judge` (the configured judge) where it judged the pair; `scores=False` leaves the
    scores out (a fate needs none)."""
    total = store.count("pair", status="current")
    judgments = current_judgments(store, judge) if judge is not None else {}
    return total, _joined(store, iter_pairs(store), batch, judgments, scores)


def _joined(
    store: Store, pairs: Iterable[Pair], batch: int, judgments: dict[str, Record], with_scores: bool
) -> Iterator[PairRecords]:
    remaining = iter(pairs)
    while chunk := list(islice(remaining, batch)):
        ids = [pair.id for pair in chunk]
        scores = _by_subject(store, "score", ids) if with_scores else {}
        decisions = _by_subject(store, "decision", ids)
        text = _by_subject(store, "decision", sorted({pair.variant["id"] for pair in chunk}))
        verdicts = _by_subject(store, "verdict", ids)
        for pair in chunk:
            text_decisions = [d for d in text.get(pair.variant["id"], []) if d["stage"] == "text"]
            yield PairRecords(
                pair,
                scores.get(pair.id, []),
                decisions.get(pair.id, []) + text_decisions,
                verdicts.get(pair.id, []),
                judgments.get(pair.id),
            )
