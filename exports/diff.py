"""Row fingerprints, the content hash of a release, and the difference between two exported versions.

A row's fingerprint is an 8-byte digest per field (images hashed by their bytes), so two versions can be compared
field by field while holding only a few hundred bytes per row, never the images.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from curation.core.errors import InputError
from exports.versions import folder_name, normalise_version
from exports.writer import FEATURES, IMAGE_COLUMNS

FIELDS = tuple(FEATURES)
DIGEST_BYTES = 8
CONFIG_DIRECTORIES = {"default": "data", "hard_negatives": "hard_negatives"}


def _digest(value: Any) -> bytes:
    # repr is exact and fast for the row's value types (str, int, float, None, lists, the fixed-order votes dict).
    return hashlib.blake2b(repr(value).encode(), digest_size=DIGEST_BYTES).digest()


def fingerprint(row: dict[str, Any]) -> bytes:
    """Per-field digests of a row whose images are given as sha256 references.

    Rows built by the exporter and rows read back from parquet give the same digests: both hold floats as float,
    integers as int and the votes struct in the schema's key order.
    """
    return b"".join(_digest(row[name]["bytes"] if name in IMAGE_COLUMNS else row[name]) for name in FIELDS)


def changed_fields(old: bytes, new: bytes) -> list[str]:
    """The fields whose digests differ between two fingerprints."""
    return [
        name
        for i, name in enumerate(FIELDS)
        if old[i * DIGEST_BYTES : (i + 1) * DIGEST_BYTES] != new[i * DIGEST_BYTES : (i + 1) * DIGEST_BYTES]
    ]


class ContentHasher:
    """sha256 over each config's (row id, fingerprint) lines in row order, combined in config order.

    Equal rows give an equal hash whatever the shard sizes, so a release's content can be checked from its folder.
    """

    def __init__(self) -> None:
        self._hashes: dict[str, hashlib._Hash] = {}

    def add(self, config: str, row_id: str, print_: bytes) -> None:
        self._hashes.setdefault(config, hashlib.sha256()).update(f"{row_id}\t{print_.hex()}\n".encode())

    def hexdigest(self) -> str:
        lines = [
            f"{config}\t{self._hashes[config].hexdigest()}\n" for config in CONFIG_DIRECTORIES if config in self._hashes
        ]
        return hashlib.sha256("".join(lines).encode()).hexdigest()


def shard_paths(folder: Path, config: str = "default") -> list[Path]:
    return sorted((folder / CONFIG_DIRECTORIES[config]).glob("train-*-of-*.parquet"))


def iter_folder_rows(folder: Path, config: str = "default") -> Iterator[dict[str, Any]]:
    """Rows of an exported folder, images replaced by the sha256 of their bytes, one row group in memory."""
    for path in shard_paths(folder, config):
        parquet = pq.ParquetFile(path)
        for group in range(parquet.num_row_groups):
            for row in parquet.read_row_group(group).to_pylist():
                for column in IMAGE_COLUMNS:
                    row[column] = {"bytes": hashlib.sha256(row[column]["bytes"]).hexdigest(), "path": None}
                yield row


def folder_fingerprints(folder: Path, config: str = "default") -> dict[str, bytes]:
    return {row["id"]: fingerprint(row) for row in iter_folder_rows(folder, config)}


def folder_content_hash(folder: Path) -> tuple[str, int]:
    """Recompute a folder's content hash and its default config's row count from its shards."""
    hasher, rows = ContentHasher(), 0
    for config in CONFIG_DIRECTORIES:
        for row in iter_folder_rows(folder, config):
            hasher.add(config, row["id"], fingerprint(row))
            rows += config == "default"
    return hasher.hexdigest(), rows


@dataclass
class Diff:
    """Rows added, removed and changed (with the fields that changed) from an old version to a new one."""

    old: str | None
    new: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)

    def field_counts(self) -> Counter[str]:
        return Counter(name for fields in self.changed.values() for name in fields)

    def as_dict(self) -> dict[str, Any]:
        return {"old": self.old, "new": self.new, "added": self.added, "removed": self.removed, "changed": self.changed}


def diff_fingerprints(old: dict[str, bytes], new: dict[str, bytes], old_name: str | None, new_name: str) -> Diff:
    """Compare two id → fingerprint maps (pure)."""
    return Diff(
        old=old_name,
        new=new_name,
        added=sorted(set(new) - set(old)),
        removed=sorted(set(old) - set(new)),
        changed={i: changed_fields(old[i], new[i]) for i in sorted(set(old) & set(new)) if old[i] != new[i]},
    )


def changelog(diff: Diff, notes: str | None) -> str:
    """A changelog entry drafted from a diff, followed by the curator's notes."""
    if diff.old is None:
        summary = f"First release: {len(diff.added)} rows."
    else:
        summary = (
            f"Compared with v{diff.old}: {len(diff.added)} rows added, {len(diff.removed)} removed, "
            f"{len(diff.changed)} changed."
        )
        counts = diff.field_counts()
        if counts:
            summary += " Changed fields: " + ", ".join(f"{name} ({n})" for name, n in sorted(counts.items())) + "."
    return summary + (f"\n\n{notes.strip()}" if notes and notes.strip() else "")


def diff_versions(exports_dir: Path, old: str, new: str) -> Diff:
    """Compare two exported version folders (exports/vA, exports/vB) row by row."""
    folders = []
    for version in (old, new):
        folder = exports_dir / folder_name(version)
        if not folder.is_dir():
            raise InputError(f"version {normalise_version(version)} has not been exported (no {folder})")
        folders.append(folder)
    return diff_fingerprints(
        folder_fingerprints(folders[0]), folder_fingerprints(folders[1]), normalise_version(old), normalise_version(new)
    )
