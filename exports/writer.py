"""Parquet shards in the Hub layout (`data/train-00000-of-00002.parquet`), streamed a row group at a time.

Rows arrive one by one with their images as sha256 references; the writer reads their PNGs from the image store
as they arrive and writes a row group every ROWS_PER_GROUP rows, so memory holds one row group, never the dataset. Shards are capped in
size, named once their count is known, and byte-identical for identical rows (no timestamps, fixed settings).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Features, Image, List, Value

FEATURES = Features(
    {
        "id": Value("string"),
        "base_prompt": Value("string"),
        "anti_prompt": Value("string"),
        "dimensions": List(Value("string")),
        "intensity": Value("string"),
        "image_base": Image(),
        "image_anti": Image(),
        "generator": Value("string"),
        "seed": Value("int64"),
        "fidelity": Value("float64"),
        "content_kept": Value("float64"),
        "direction": Value("float64"),
        "probe": List(Value("float64")),
        "clip_outcome": Value("string"),
        "verdict": Value("string"),
        "verdict_round": Value("int32"),
        "votes": {"anti": Value("int32"), "base": Value("int32"), "tie": Value("int32")},
        "agreement": Value("float64"),
        "judge_verdict": Value("string"),
        "decided_by": Value("string"),
        "provenance": Value("string"),
        "license": Value("string"),
    }
)
IMAGE_COLUMNS = ("image_base", "image_anti")
ROWS_PER_GROUP = 100
MAX_GROUP_BYTES = 64 * 1024 * 1024
# Footer, page headers and per-row overhead kept free under the cap.
SHARD_HEADROOM_BYTES = 64 * 1024
ROW_OVERHEAD_BYTES = 512


def parquet_options(features: Features = FEATURES) -> dict[str, Any]:
    """Fixed writer settings: PNG bytes stored as they are (no compression, dictionary or statistics)."""
    columns = [".".join(path) for path in _leaf_paths(features.arrow_schema)]
    image_bytes = {f"{name}.bytes" for name in image_columns(features)}
    return {
        "compression": {c: ("NONE" if c in image_bytes else "ZSTD") for c in columns},
        "use_dictionary": [c for c in columns if c not in image_bytes],
        "write_statistics": [c for c in columns if c not in image_bytes],
        "version": "2.6",
    }


def _leaf_paths(schema: pa.Schema) -> list[tuple[str, ...]]:
    def walk(name: tuple[str, ...], dtype: pa.DataType) -> list[tuple[str, ...]]:
        if pa.types.is_struct(dtype):
            return [p for i in range(dtype.num_fields) for p in walk((*name, dtype.field(i).name), dtype.field(i).type)]
        if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
            return walk((*name, "list", "element"), dtype.value_type)
        return [name]

    return [p for f in schema for p in walk((f.name,), f.type)]


def image_columns(features: Features) -> tuple[str, ...]:
    return tuple(name for name, feature in features.items() if isinstance(feature, Image))


def shard_name(split: str, index: int, total: int) -> str:
    return f"{split}-{index:05d}-of-{total:05d}.parquet"


def row_size(row: dict[str, Any], images: tuple[str, ...] = IMAGE_COLUMNS) -> int:
    """Estimated bytes a row (images as PNG bytes) takes in a shard: its PNGs plus its text."""
    text = sum(len(v) for v in row.values() if isinstance(v, str))
    return sum(len(row[c]["bytes"]) for c in images) + text + ROW_OVERHEAD_BYTES


@dataclass
class ShardWriter:
    """Writes rows of one config into `folder/<directory>/<split>-*.parquet`, each shard at most `max_bytes`;
    `features` is the config's schema (its Image columns hold PNG bytes as they are)."""

    folder: Path
    directory: str
    read_image: Callable[[str], bytes]
    max_bytes: int
    split: str = "train"
    rows_per_group: int = ROWS_PER_GROUP
    features: Features = field(default_factory=lambda: FEATURES)
    num_rows: int = 0
    _parts: list[Path] = field(default_factory=list)
    _writer: pq.ParquetWriter | None = None
    _pending: list[dict[str, Any]] = field(default_factory=list)
    _pending_bytes: int = 0
    _shard_bytes: int = 0
    _options: dict[str, Any] = field(default_factory=dict)
    _images: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self._options = parquet_options(self.features)
        self._images = image_columns(self.features)

    def add(self, row: dict[str, Any]) -> None:
        """Queue a row (images as sha256 references, read now); writes a row group when one is full."""
        row = {**row, **{c: {"bytes": self.read_image(row[c]["bytes"]), "path": None} for c in self._images}}
        size = row_size(row, self._images)
        budget = self.max_bytes - SHARD_HEADROOM_BYTES
        if self._shard_bytes + self._pending_bytes + size > budget and self._shard_bytes + self._pending_bytes > 0:
            self._flush()
            self._close_shard()
        self._pending.append(row)
        self._pending_bytes += size
        self.num_rows += 1
        if len(self._pending) >= self.rows_per_group or self._pending_bytes >= min(MAX_GROUP_BYTES, budget):
            self._flush()

    def close(self) -> list[Path]:
        """Write what is queued and give the shards their final names; returns their paths in order."""
        self._flush()
        self._close_shard()
        final = []
        for index, part in enumerate(self._parts):
            target = part.with_name(shard_name(self.split, index, len(self._parts)))
            part.rename(target)
            final.append(target)
        return final

    def _flush(self) -> None:
        if not self._pending:
            return
        rows = self._pending
        table = pa.Table.from_pylist(rows, schema=self.features.arrow_schema)
        if self._writer is None:
            directory = self.folder / self.directory
            directory.mkdir(parents=True, exist_ok=True)
            part = directory / f".part-{len(self._parts):05d}.parquet"
            self._parts.append(part)
            self._writer = pq.ParquetWriter(part, self.features.arrow_schema, **self._options)
        self._writer.write_table(table, row_group_size=len(rows))
        self._shard_bytes += self._pending_bytes
        self._pending, self._pending_bytes = [], 0

    def _close_shard(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._shard_bytes = 0
