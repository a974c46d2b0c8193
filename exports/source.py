"""Reading the store for an export: every pair joined with its scores, decisions and verdicts, in pair-id order."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice

from curation.core.judges import JudgeIdentity, current_judgments
from curation.core.pairs import Pair, iter_pairs
from curation.core.store import Record, Store
from exports.rows import PairRecords

FETCH_BATCH = 500


def _by_subject(store: Store, kind: str, subject_ids: list[str]) -> dict[str, list[Record]]:
    grouped: dict[str, list[Record]] = {}
    for record in store.iter(kind, subject_id=subject_ids):
        grouped.setdefault(record["subject_id"], []).append(record)
    return grouped


def pair_records(
    store: Store, batch: int = FETCH_BATCH, judge: JudgeIdentity | None = None
) -> tuple[int, Iterator[PairRecords]]:
    """How many complete pairs there are, and each one with the records written about it (fetched in batches),
    with the judgment of `judge` (the configured judge) where it judged the pair."""
    pairs = list(iter_pairs(store))
    judgments = current_judgments(store, judge) if judge is not None else {}
    return len(pairs), _joined(store, pairs, batch, judgments)


def _joined(store: Store, pairs: list[Pair], batch: int, judgments: dict[str, Record]) -> Iterator[PairRecords]:
    remaining = iter(pairs)
    while chunk := list(islice(remaining, batch)):
        ids = [pair.id for pair in chunk]
        scores = _by_subject(store, "score", ids)
        decisions = _by_subject(store, "decision", ids)
        # The text stage judges the variant (subject_id = variant id); its decision applies to every pair of it.
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
