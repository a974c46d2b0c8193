"""Reading what is written about pairs: each current pair with its scores, decisions, verdicts and the configured
judge's judgment, fetched in batches with indexed queries, in pair-id order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from curation.core.judges import JudgeIdentity, current_judgments
from curation.core.pairs import FETCH_BATCH, Pair, iter_pairs
from curation.core.store import Record, Store
from curation.domain.fate import Evidence, Fate, RowsMode, fate


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
    """How many current pairs there are, and each one with its linked records and the records written about it
    (fetched in batches), with the judgment of `judge` (the configured judge) where it judged the pair;
    `scores=False` leaves the scores out (a fate needs none)."""
    total = store.count("pair", status="current")
    judgments = current_judgments(store, judge) if judge is not None else {}
    return total, _joined(store, iter_pairs(store), batch, judgments, scores)


def current_evidence(store: Store, judge: JudgeIdentity | None = None) -> Iterator[tuple[Record, Evidence]]:
    """Each current pair record with its evidence, without reading its renders, variant or base prompt (what
    counting fates needs: pending export, the report, status)."""
    judgments = current_judgments(store, judge) if judge is not None else {}
    records = store.iter("pair", status="current")
    while chunk := list(islice(records, FETCH_BATCH)):
        decisions, verdicts = _about(store, chunk)
        for pair in chunk:
            yield pair, Evidence(decisions.get(pair["id"], []), verdicts.get(pair["id"], []), judgments.get(pair["id"]))


def _about(store: Store, pairs: list[Record]) -> tuple[dict[str, list[Record]], dict[str, list[Record]]]:
    """The decisions (each pair's clip decision and its variant's text decision) and verdicts of a batch of pair
    records, by pair id."""
    ids = [pair["id"] for pair in pairs]
    clip = _by_subject(store, "decision", ids)
    text = _by_subject(store, "decision", sorted({pair["variant_id"] for pair in pairs}))
    decisions = {
        pair["id"]: clip.get(pair["id"], []) + [d for d in text.get(pair["variant_id"], []) if d["stage"] == "text"]
        for pair in pairs
    }
    return decisions, _by_subject(store, "verdict", ids)


def _joined(
    store: Store, pairs: Iterable[Pair], batch: int, judgments: dict[str, Record], with_scores: bool
) -> Iterator[PairRecords]:
    remaining = iter(pairs)
    while chunk := list(islice(remaining, batch)):
        ids = [pair.id for pair in chunk]
        scores = _by_subject(store, "score", ids) if with_scores else {}
        decisions, verdicts = _about(store, [pair.record for pair in chunk])
        for pair in chunk:
            yield PairRecords(
                pair, scores.get(pair.id, []), decisions[pair.id], verdicts.get(pair.id, []), judgments.get(pair.id)
            )
