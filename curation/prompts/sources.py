"""Reading base prompts from files and Hugging Face datasets into (row number, text, category) rows."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from curation.core import hub
from curation.core.errors import InputError

TABULAR = {".csv": ",", ".tsv": "\t"}
SUPPORTED = (".txt", ".csv", ".tsv", ".jsonl", ".parquet")
BUILTIN_SETS = {"starter": "starter_prompts.jsonl"}


@dataclass(frozen=True)
class SourceRow:
    """One row of a source: its 1-based row (or line) number, raw text and optional category."""

    row: int
    text: str
    category: str | None = None


def decode_utf8(path: Path, data: bytes) -> str:
    """Strict UTF-8 decode; a binary or mis-encoded file is an InputError naming the line."""
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise InputError(f"{path}:{line}: binary data (NUL byte); expected UTF-8 text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{path}:{line}: not valid UTF-8 (byte {data[exc.start]:#04x}); re-save the file as UTF-8"
        ) from None


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _read_text(path: Path, data: bytes) -> Iterator[SourceRow]:
    for number, line in enumerate(decode_utf8(path, data).splitlines(), start=1):
        yield SourceRow(number, line)


def _read_table(path: Path, data: bytes, column: str) -> Iterator[SourceRow]:
    import polars as pl

    text = decode_utf8(path, data)
    try:
        frame = pl.read_csv(io.StringIO(text), separator=TABULAR[path.suffix.lower()], infer_schema=False)
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"{path}: not a readable {path.suffix[1:].upper()} file: {str(exc).splitlines()[0]}") from None
    yield from _rows_from_frame(path, frame, column, first_row=2)


def _rows_from_frame(path: Path | str, frame: Any, column: str, first_row: int) -> Iterator[SourceRow]:
    if column not in frame.columns:
        raise InputError(f"{path}: no column {column!r} (columns: {', '.join(frame.columns) or 'none'}); use --column")
    categories = frame["category"].to_list() if "category" in frame.columns and column != "category" else None
    for index, value in enumerate(frame[column].to_list()):
        category = _cell(categories[index]) if categories else None
        yield SourceRow(index + first_row, _cell(value) or "", category)


def _read_jsonl(path: Path, data: bytes, column: str) -> Iterator[SourceRow]:
    for number, line in enumerate(decode_utf8(path, data).splitlines(), start=1):
        if not line.strip():
            yield SourceRow(number, "")
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise InputError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
        if column not in obj:
            raise InputError(f"{path}:{number}: no field {column!r} (fields: {', '.join(obj) or 'none'}); use --column")
        yield SourceRow(number, _cell(obj[column]) or "", _cell(obj.get("category")))


def _read_parquet(path: Path, data: bytes, column: str) -> Iterator[SourceRow]:
    import polars as pl

    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except Exception as exc:  # polars raises several unrelated types for a broken file
        raise InputError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
    yield from _rows_from_frame(path, frame, column, first_row=1)


def read_file(path: Path, column: str) -> list[SourceRow]:
    """All rows of a local file; structural problems raise InputError before anything is stored."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise InputError(
            f"{path}: unsupported file type {suffix or '(none)'!r}; expected one of {', '.join(SUPPORTED)}"
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a file") from None
    if not data.strip():
        raise InputError(f"{path}:1: empty file")
    if suffix == ".txt":
        rows = list(_read_text(path, data))
    elif suffix in TABULAR:
        rows = list(_read_table(path, data, column))
    elif suffix == ".jsonl":
        rows = list(_read_jsonl(path, data, column))
    else:
        rows = list(_read_parquet(path, data, column))
    if not rows:
        raise InputError(f"{path}:1: no rows")
    return rows


def read_builtin(name: str) -> list[SourceRow]:
    """A prompt set shipped with widespec (`--builtin starter`)."""
    if name not in BUILTIN_SETS:
        raise InputError(f"no built-in prompt set {name!r}; available: {', '.join(BUILTIN_SETS)}")
    path = Path(str(resources.files("curation") / "data" / BUILTIN_SETS[name]))
    return read_file(path, "text")


def check_hub_reachable(timeout_s: float) -> None:
    """Fail fast with a clear message when the Hub cannot be reached (datasets would retry for minutes)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}:
        return  # offline mode: datasets reads its cache or fails fast by itself
    reason = hub.unreachable_reason(timeout_s)
    if reason is not None:
        raise InputError(
            f"cannot reach the Hugging Face Hub at {hub.endpoint()} ({reason}); check the network or HF_ENDPOINT, "
            "or set HF_HUB_OFFLINE=1 to use datasets already in the local cache"
        )


def read_hub(spec: str, column: str, timeout_s: float) -> list[SourceRow]:
    """Rows of `hf://owner/name[:split]` through `datasets`."""
    name, _, split = spec.removeprefix("hf://").partition(":")
    if name.count("/") != 1 or not all(name.split("/")):
        raise InputError(f"{spec}: expected hf://owner/name[:split]")
    check_hub_reachable(timeout_s)
    import datasets

    try:
        dataset = datasets.load_dataset(name, split=split or "train")
    except Exception as exc:  # datasets wraps hub, file and split errors in many types
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{spec}: could not load dataset: {first_line}") from None
    if column not in dataset.column_names:
        raise InputError(f"{spec}: no column {column!r} (columns: {', '.join(dataset.column_names)}); use --column")
    categories = dataset["category"] if "category" in dataset.column_names and column != "category" else None
    return [
        SourceRow(i + 1, _cell(value) or "", _cell(categories[i]) if categories else None)
        for i, value in enumerate(dataset[column])
    ]
