"""Gold answers: pairs whose right choice is known, mixed into rounds to measure annotators.

Gold answers are durable state (one key per pair), imported from a CSV / JSONL file (`widespec annotate gold add`)
or taken from an earlier round's unanimous-enough verdicts (`gold from-round`). A file names each pair by its id, or
by its base and variant prompt texts, with the expected choice (anti, base or tie); a bad row stops the import
with one line naming the file, the row and the field, and nothing is stored. Re-importing changes nothing.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curation.core.errors import InputError
from curation.core.executor import execute
from curation.core.pairs import Pair, iter_pairs
from curation.core.stage import Output, Stage, Work
from curation.core.workspace import Workspace

GOLD_PREFIX = "annotation:gold:"
LABELS = ("anti", "base", "tie")
FIELDS = ("pair_id", "base", "variant", "expected")


@dataclass(frozen=True)
class GoldRow:
    """One row of a gold file: a pair id or the base and variant prompt texts, and the expected choice."""

    row: int  # line number in the file
    pair_id: str
    base: str
    variant: str
    expected: str


@dataclass(frozen=True)
class GoldAdded:
    added: int
    unchanged: int


def _rows(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(handle)
            missing = {"expected"} - set(reader.fieldnames or ())
            if missing:
                raise InputError(
                    f"{path}: row 1: field expected: missing from the header (columns: {', '.join(FIELDS)})"
                )
            for row in reader:
                yield reader.line_num, row
            return
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}: row {number}: not JSON ({exc.msg})") from None
            if not isinstance(value, dict):
                raise InputError(f"{path}: row {number}: not a JSON object")
            yield number, value


def _text(path: Path, number: int, row: Mapping[str, Any], field: str) -> str:
    value = row.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"{path}: row {number}: field {field}: must be a string, got {json.dumps(value)}")
    return value.strip()


def parse_gold_file(path: Path) -> list[GoldRow]:
    """The rows of a gold file (.csv with a header, or .jsonl), checked field by field."""
    if path.suffix.lower() not in (".csv", ".jsonl"):
        raise InputError(f"{path}: gold answers must be a .csv or .jsonl file")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    rows = []
    for number, row in _rows(path):
        pair_id, base, variant, expected = (_text(path, number, row, f) for f in FIELDS)
        if expected.lower() not in LABELS:
            raise InputError(f"{path}: row {number}: field expected: {expected!r} is not one of {', '.join(LABELS)}")
        if not pair_id and not (base and variant):
            field = "base" if not base else "variant"
            raise InputError(f"{path}: row {number}: field {field}: give a pair_id, or both base and variant prompts")
        rows.append(GoldRow(number, pair_id, base, variant, expected.lower()))
    if not rows:
        raise InputError(f"{path}: no gold answers in the file")
    return rows


def match_pairs(path: Path, rows: Iterable[GoldRow], pairs: Iterable[Pair]) -> dict[str, str]:
    """pair id → expected choice for every row; a row naming no pair, or several, or a pair twice is an error."""
    by_id: dict[str, Pair] = {}
    by_text: dict[tuple[str, str], list[str]] = {}
    for pair in pairs:
        by_id[pair.id] = pair
        by_text.setdefault((pair.base["text"].strip(), pair.variant["text"].strip()), []).append(pair.id)
    found: dict[str, str] = {}
    for row in rows:
        if row.pair_id:
            if row.pair_id not in by_id:
                raise InputError(
                    f"{path}: row {row.row}: field pair_id: no complete pair {row.pair_id} in the workspace"
                )
            pair_id = row.pair_id
        else:
            matches = by_text.get((row.base, row.variant), [])
            if len(matches) != 1:
                what = "no pair has" if not matches else f"{len(matches)} pairs have"
                raise InputError(
                    f"{path}: row {row.row}: field variant: {what} these base and variant prompts"
                    + ("; give a pair_id" if matches else "")
                )
            pair_id = matches[0]
        if found.get(pair_id, row.expected) != row.expected:
            raise InputError(f"{path}: row {row.row}: field expected: pair {pair_id} has another expected choice above")
        found[pair_id] = row.expected
    return found


def gold_answers(ws: Workspace) -> dict[str, str]:
    """Every stored gold answer: pair id → expected choice."""
    stored = ws.store.state_items(GOLD_PREFIX)
    return {key.removeprefix(GOLD_PREFIX): str(value["label"]) for key, value in stored.items() if value}


class GoldImport(Stage):
    """Storing gold answers found by `answers(ws)` (read under the workspace lock) with their source."""

    name = "gold"

    def __init__(self, answers: Callable[[Workspace], Mapping[str, str]], source: str) -> None:
        self.answers, self.source = answers, source

    def pending(self, ws: Workspace) -> int:
        return 0  # gold answers come from a file or a round named on the command line

    def plan(self, ws: Workspace, options: Any = None) -> Work:
        answers, known = self.answers(ws), gold_answers(ws)
        changed = {pair_id: label for pair_id, label in sorted(answers.items()) if known.get(pair_id) != label}
        state = {GOLD_PREFIX + pair_id: {"label": label, "source": self.source} for pair_id, label in changed.items()}
        counts = Counter({"added": len(changed), "unchanged": len(answers) - len(changed)})
        return Work([], before=Output(state=state, counts=counts))


def _store(ws: Workspace, answers: Callable[[Workspace], Mapping[str, str]], source: str) -> GoldAdded:
    counts = execute(ws, GoldImport(answers, source)).counts
    return GoldAdded(counts["added"], counts["unchanged"])


def add_file(ws: Workspace, path: Path) -> GoldAdded:
    """Import a gold file: every row is checked before anything is stored; a pair's answer is replaced."""
    rows = parse_gold_file(path)
    return _store(ws, lambda ws: match_pairs(path, rows, iter_pairs(ws.store)), f"file {path.name}")


def from_round(ws: Workspace, round_number: int) -> GoldAdded:
    """The round's resolved pairs with agreement ≥ annotation.gold_min_agreement become gold answers."""
    return _store(ws, lambda ws: round_answers(ws, round_number), f"round {round_number}")


def round_answers(ws: Workspace, round_number: int) -> dict[str, str]:
    """The round's verdicts with agreement ≥ annotation.gold_min_agreement: pair id → label."""
    floor = ws.settings.annotation.gold_min_agreement
    verdicts = list(ws.store.iter("verdict", round=round_number))
    if not verdicts:
        raise InputError(
            f"round {round_number} has no verdicts: run `widespec annotate resolve --round {round_number}`"
        )
    return {
        v["subject_id"]: v["label"]
        for v in verdicts
        if v["label"] != "unresolved" and v["agreement"] is not None and v["agreement"] >= floor
    }
