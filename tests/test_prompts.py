"""Importing base prompts: formats, normalisation, dedup, sampling, rejections, and bad input leaving the store unchanged."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import polars as pl
import pytest

from curation.core.errors import InputError
from curation.core.records import base_prompt_id
from curation.core.workspace import Workspace
from curation.prompts.importing import import_prompts, plan_import
from curation.prompts.sources import SourceRow, read_builtin


def texts(ws: Workspace) -> list[str]:
    return sorted(r["text"] for r in ws.store.iter("base_prompt"))


def test_txt_import_normalises_dedups_skips_and_rejects(workspace: Workspace, tmp_path: Path) -> None:
    workspace.config["prompts"]["max_chars"] = 40
    source = tmp_path / "prompts.txt"
    long_line = "a very long prompt " * 5
    source.write_text(
        "A cafe\u0301 at  dawn\n\n   \nA café at dawn\nA red kite over a beach\n" + long_line + "\n", encoding="utf-8"
    )
    result = import_prompts(workspace, str(source))
    assert (result.imported, result.duplicates, result.skipped, result.rejected) == (2, 1, 2, 1)
    assert texts(workspace) == ["A café at dawn", "A red kite over a beach"]
    rows = {r["text"]: r for r in workspace.store.iter("base_prompt")}
    assert rows["A café at dawn"]["source_row"] == 1
    assert result.report is not None
    [rejected] = [json.loads(line) for line in result.report.read_text().splitlines()]
    assert rejected["row"] == 6 and "max_chars" in rejected["reason"]


def test_second_import_of_the_same_file_adds_nothing(workspace: Workspace, tmp_path: Path) -> None:
    source = tmp_path / "prompts.txt"
    source.write_text("one\ntwo\nthree\n")
    assert import_prompts(workspace, str(source)).imported == 3
    again = import_prompts(workspace, str(source))
    assert (again.imported, again.duplicates) == (0, 3)
    assert workspace.store.count("base_prompt") == 3
    assert [run["counts"]["imported"] for run in workspace.store.runs(stage="prompts")] == [0, 3]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_tabular_formats_read_the_named_column_and_category(workspace: Workspace, tmp_path: Path, suffix: str) -> None:
    frame = pl.DataFrame({"caption": ["a dog, running", "a bowl of soup"], "category": ["animals", "food"]})
    path = tmp_path / f"prompts{suffix}"
    if suffix == ".csv":
        frame.write_csv(path)
    elif suffix == ".tsv":
        frame.write_csv(path, separator="\t")
    elif suffix == ".jsonl":
        frame.write_ndjson(path)
    else:
        frame.write_parquet(path)
    result = import_prompts(workspace, str(path), column="caption")
    assert result.imported == 2
    by_text = {r["text"]: r["category"] for r in workspace.store.iter("base_prompt")}
    assert by_text == {"a dog, running": "animals", "a bowl of soup": "food"}


def test_category_option_overrides_the_source(workspace: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a lighthouse", "category": "architecture"}\n')
    import_prompts(workspace, str(path), category="coast")
    assert next(workspace.store.iter("base_prompt"))["category"] == "coast"


def test_sample_is_reproducible_and_seed_dependent() -> None:
    rows = [SourceRow(i, f"prompt number {i}") for i in range(1, 101)]

    def sampled(seed: int) -> list[str]:
        plan = plan_import(rows, source="s", existing_ids=set(), max_chars=100, sample=10, seed=seed)
        return [r["text"] for r in plan.records]

    assert sampled(3) == sampled(3)
    assert sampled(3) != sampled(4)
    assert len(sampled(3)) == 10


def test_ids_depend_only_on_normalised_text() -> None:
    assert base_prompt_id("A  cat\n") == base_prompt_id("A cat")
    assert base_prompt_id("A cat") != base_prompt_id("A dog")


BAD_INPUTS = [
    ("latin1.txt", "ok line\ncaf\xe9\n".encode("latin-1"), r"latin1.txt:2: not valid UTF-8"),
    ("binary.txt", b"line one\nline\x00two\n", r"binary.txt:2: binary data"),
    ("empty.csv", b"", r"empty.csv:1: empty file"),
    ("nocol.csv", b"text,other\na,b\n", r"nocol.csv: no column 'prompt' \(columns: text, other\)"),
    ("broken.jsonl", b'{"prompt": "a"}\n{"prompt": \n', r"broken.jsonl:2: not valid JSON"),
    ("nofield.jsonl", b'{"prompt": "a"}\n{"caption": "b"}\n', r"nofield.jsonl:2: no field 'prompt'"),
    ("broken.parquet", b"PAR1 not really parquet", r"broken.parquet: not a readable Parquet file"),
    ("prompts.xlsx", b"x", r"prompts.xlsx: unsupported file type"),
]


@pytest.mark.parametrize(("name", "data", "message"), BAD_INPUTS)
def test_bad_input_is_one_line_error_and_store_unchanged(
    workspace: Workspace, tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    import_prompts(workspace, "builtin:starter", sample=5)
    before = (texts(workspace), workspace.store.runs())
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError, match=message) as info:
        import_prompts(workspace, str(path))
    assert "\n" not in str(info.value)
    # The stored prompts and earlier runs stay; the ledger says the import failed, and why, in the same line.
    failed, *earlier = workspace.store.runs()
    assert (texts(workspace), earlier) == before
    assert (failed["stage"], failed["status"], failed["error"]) == ("prompts", "failed", str(info.value))


def test_builtin_starter_set_spans_ten_categories() -> None:
    rows = read_builtin("starter")
    assert 190 <= len(rows) <= 220
    categories = {row.category for row in rows}
    assert categories == {
        "people",
        "animals",
        "food",
        "landscapes",
        "interiors",
        "objects",
        "vehicles",
        "architecture",
        "events",
        "artworks",
    }
    assert len({row.text.lower() for row in rows}) == len(rows)


def test_unknown_builtin_set_names_the_available_ones() -> None:
    with pytest.raises(InputError, match="available: starter"):
        read_builtin("coco")


def test_unreachable_hub_fails_fast_with_a_clear_error(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    started = time.monotonic()
    with pytest.raises(InputError, match=r"cannot reach the Hugging Face Hub at http://127\.0\.0\.1"):
        import_prompts(workspace, "hf://owner/captions:train")
    assert time.monotonic() - started < 5
    assert workspace.store.count("base_prompt") == 0


def test_malformed_hub_spec_is_an_input_error(workspace: Workspace) -> None:
    with pytest.raises(InputError, match="expected hf://owner/name"):
        import_prompts(workspace, "hf://just-a-name")


def test_hub_dataset_import_through_datasets(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import HfApi

    from tests.hub_fake import FakeHub, installed

    monkeypatch.setenv("HF_TOKEN", "hf_test_token_0123456789")
    rows = "".join(json.dumps({"caption": f"a tram crossing a bridge at dusk, view {i}"}) + "\n" for i in range(5))
    with installed(FakeHub()):
        api = HfApi()
        api.create_repo("owner/captions", repo_type="dataset")
        api.upload_file(
            path_or_fileobj=rows.encode(),
            path_in_repo="data/train.jsonl",
            repo_id="owner/captions",
            repo_type="dataset",
        )
        result = import_prompts(workspace, "hf://owner/captions:train", column="caption", sample=3, seed=1)
        again = import_prompts(workspace, "hf://owner/captions:train", column="caption")
    assert (result.imported, again.imported, again.duplicates) == (3, 2, 3)
    stored = list(workspace.store.iter("base_prompt"))
    assert {r["source"] for r in stored} == {"hf://owner/captions:train"}
    assert sorted(r["source_row"] for r in stored) == [1, 2, 3, 4, 5]
