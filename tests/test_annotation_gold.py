"""Gold answers: importing a CSV / JSONL file, taking them from a round, and mixing them into a round's plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotation import gold, workflow
from curation.core.errors import InputError
from curation.core.pairs import iter_pairs
from curation.core.workspace import Workspace
from tests.annotation_fixtures import configure
from tests.dataset_fixtures import populate
from tests.test_cli import widespec


def _texts(ws: Workspace) -> dict[str, tuple[str, str]]:
    return {p.id: (p.base["text"], p.variant["text"]) for p in iter_pairs(ws.store)}


def test_gold_file_by_pair_id_or_prompts_is_stored_once(workspace: Workspace, tmp_path: Path) -> None:
    pairs = populate(workspace, 4)
    texts = _texts(workspace)
    csv_file = tmp_path / "gold.csv"
    csv_file.write_text(
        f'pair_id,base,variant,expected\n{pairs[0]},,,anti\n,"{texts[pairs[1]][0]}","{texts[pairs[1]][1]}",Base\n',
        encoding="utf-8",
    )
    jsonl = tmp_path / "gold.jsonl"
    jsonl.write_text(json.dumps({"pair_id": pairs[2], "expected": "tie"}) + "\n\n", encoding="utf-8")
    assert gold.add_file(workspace, csv_file) == gold.GoldAdded(2, 0)
    assert gold.add_file(workspace, jsonl) == gold.GoldAdded(1, 0)
    assert gold.gold_answers(workspace) == {pairs[0]: "anti", pairs[1]: "base", pairs[2]: "tie"}
    assert gold.add_file(workspace, csv_file) == gold.GoldAdded(0, 2)  # rerun: nothing changes
    # Durable state, not cache: clearing the cache keeps the answers.
    workspace.store.cache_clear()
    assert len(gold.gold_answers(workspace)) == 3


def test_a_gold_pair_waits_for_no_round_and_an_excel_csv_reads(workspace: Workspace, tmp_path: Path) -> None:
    from annotation.progress import pending_pairs

    pairs = populate(workspace, 4)
    before = pending_pairs(workspace)
    unjudged = [p for p in pairs if not list(workspace.store.iter("verdict", subject_id=p))]
    accepted = {d["subject_id"] for d in workspace.store.iter("decision", stage="clip", outcome=["accept", "review"])}
    known = next(p for p in unjudged if p in accepted)
    excel = tmp_path / "gold.csv"
    excel.write_text(f"pair_id,expected\n{known},anti\n", encoding="utf-8-sig")  # with the BOM Excel writes
    assert gold.add_file(workspace, excel) == gold.GoldAdded(1, 0)
    assert pending_pairs(workspace) == before - 1  # asked only as a gold task: its answer is known


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("pair_id,expected\n{p0},anti\n{p1},better\n", "row 3: field expected: 'better' is not one of anti, base, tie"),
        ("pair_id,base,variant,expected\n{p0},,,anti\n,only base,,anti\n", "row 3: field variant: give a pair_id"),
        ("pair_id,expected\n{p0},anti\n0123456789abcdef,base\n", "row 3: field pair_id: no complete pair"),
        (
            "pair_id,base,variant,expected\n{p0},,,anti\n,no such base,no such variant,base\n",
            "row 3: field variant: no pair",
        ),
        ("pair_id,expected\n{p0},anti\n{p0},base\n", "row 3: field expected: pair {p0} has another expected choice"),
        ("pair_id,choice\n{p0},anti\n", "row 1: field expected: missing from the header"),
    ],
)
def test_a_bad_gold_row_names_file_row_and_field_and_stores_nothing(
    workspace: Workspace, tmp_path: Path, body: str, message: str
) -> None:
    pairs = populate(workspace, 2)
    path = tmp_path / "gold.csv"
    path.write_text(body.format(p0=pairs[0], p1=pairs[1]), encoding="utf-8")
    with pytest.raises(InputError) as caught:
        gold.add_file(workspace, path)
    assert str(caught.value).startswith(f"{path}: ") and message.format(p0=pairs[0]) in str(caught.value)
    assert "\n" not in str(caught.value)
    assert gold.gold_answers(workspace) == {}  # row 2 was fine, and was not stored either


@pytest.mark.slow
def test_bad_jsonl_row_and_cli_error_line(workspace: Workspace, tmp_path: Path) -> None:
    pairs = populate(workspace, 1)
    path = tmp_path / "gold.jsonl"
    path.write_text(json.dumps({"pair_id": pairs[0], "expected": "anti"}) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"gold.jsonl: row 2: not JSON"):
        gold.add_file(workspace, path)
    path.write_text(json.dumps({"pair_id": 7, "expected": "anti"}) + "\n", encoding="utf-8")
    done = widespec("-w", str(workspace.root), "annotate", "gold", "add", str(path), cwd=workspace.root)
    assert done.returncode != 0 and "row 1: field pair_id: must be a string" in done.stderr
    assert gold.gold_answers(workspace) == {}


@pytest.mark.slow
def test_gold_from_round_takes_resolved_pairs_with_enough_agreement(workspace: Workspace) -> None:
    pairs = populate(workspace, 6)  # round-1 verdicts `anti` with agreement 2/3 for pairs 0, 2, 4
    with pytest.raises(InputError, match="round 2 has no verdicts"):
        gold.from_round(workspace, 2)
    assert gold.from_round(workspace, 1) == gold.GoldAdded(0, 0)  # gold_min_agreement 1.0: none is unanimous
    configure(workspace, gold_min_agreement=0.6)
    done = widespec("-w", str(workspace.root), "annotate", "gold", "from-round", "1", cwd=workspace.root)
    assert done.returncode == 0, done.stderr
    assert "3 added" in done.stdout
    assert gold.gold_answers(workspace) == {p: "anti" for p in pairs[::2]}


def test_round_one_mixes_imported_gold_in_at_the_rate(workspace: Workspace, tmp_path: Path) -> None:
    pairs = populate(workspace, 12)
    for verdict in list(workspace.store.iter("verdict")):  # a fresh workspace: no round has run
        workspace.store.delete("verdict", [verdict["id"]])
    path = tmp_path / "gold.jsonl"
    path.write_text("".join(json.dumps({"pair_id": p, "expected": "base"}) + "\n" for p in pairs[:4]))
    gold.add_file(workspace, path)
    configure(workspace, pairs_per_round=4, rejected_rate=0.0, gold_rate=0.5)
    by_id = {p.id: p for p in iter_pairs(workspace.store)}
    plan = workflow._make_plan(workspace, 1, by_id)
    asked = {pair: label for pair, label, _order in plan["tasks"]}
    gold_tasks = {p: label for p, label in asked.items() if label is not None}
    assert len(gold_tasks) == 2 and set(gold_tasks) <= set(pairs[:4]) and set(gold_tasks.values()) == {"base"}
    regular = [p for p, label in asked.items() if label is None]
    assert regular and not set(regular) & set(pairs[:4])  # a pair with a known answer is asked only as gold
