"""Semantic versions, release records, and moving a finished version folder into place in one rename."""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path

from curation.core.errors import InputError
from curation.core.ids import stable_id
from curation.core.store import Record, Store, utc_now

SEMVER = re.compile(r"^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
TEMP_PREFIX = ".tmp-"


def parse_version(text: str) -> tuple[int, int, int]:
    """`1.2.0` (or `v1.2.0`) → (1, 2, 0); anything else is an InputError."""
    match = SEMVER.match(text.strip())
    if not match:
        raise InputError(f"--version {text!r}: expected a semantic version MAJOR.MINOR.PATCH such as 1.0.0")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def normalise_version(text: str) -> str:
    return ".".join(str(part) for part in parse_version(text))


def folder_name(version: str) -> str:
    return f"v{normalise_version(version)}"


def releases(store: Store) -> list[Record]:
    """Every release, oldest version first."""
    return sorted(store.iter("release"), key=lambda r: parse_version(r["version"]))


def latest_release(store: Store) -> Record | None:
    existing = releases(store)
    return existing[-1] if existing else None


def check_new_version(store: Store, exports_dir: Path, version: str) -> Record | None:
    """Refuse a version that exists (record or folder) or is not above the latest; return the parent release."""
    version = normalise_version(version)
    if store.get("release", release_id(version)) is not None or (exports_dir / folder_name(version)).exists():
        raise InputError(
            f"version {version} already exists ({exports_dir / folder_name(version)}); releases are immutable: "
            "choose a new version"
        )
    parent = latest_release(store)
    if parent is not None and parse_version(version) <= parse_version(parent["version"]):
        raise InputError(f"version {version} is not above the latest release {parent['version']}")
    return parent


def release_id(version: str) -> str:
    return stable_id("release", normalise_version(version))


def release_record(
    version: str,
    parent: str | None,
    row_count: int,
    content_hash: str,
    changelog: str,
    path: str,
    manifest: dict[str, str],
) -> Record:
    return {
        "id": release_id(version),
        "version": normalise_version(version),
        "parent": parent,
        "row_count": row_count,
        "content_hash": content_hash,
        "changelog": changelog,
        "path": path,
        "manifest": manifest,
        "created_at": utc_now(),
    }


def temp_folder(exports_dir: Path, version: str) -> Path:
    """A fresh work folder beside the final one; leftovers of a crashed export of this version are removed."""
    exports_dir.mkdir(parents=True, exist_ok=True)
    for stale in exports_dir.glob(f"{TEMP_PREFIX}{folder_name(version)}-*"):
        make_writable(stale)
        shutil.rmtree(stale, ignore_errors=True)
    path = exports_dir / f"{TEMP_PREFIX}{folder_name(version)}-{os.getpid()}"
    path.mkdir()
    return path


def make_read_only(folder: Path) -> None:
    """Files of a finished version lose their write bits: a release is immutable."""
    for path in folder.rglob("*"):
        if path.is_file():
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def make_writable(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
