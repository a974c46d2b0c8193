"""A release checked before it is used: its record exists, and its folder is byte for byte what was exported."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from curation.core.errors import InputError, WidespecError
from curation.core.store import Record
from curation.core.workspace import Workspace
from exports.diff import folder_content_hash
from exports.manifest import first_difference
from exports.versions import folder_name, normalise_version, release_id


def checked_release(ws: Workspace, version: str) -> tuple[Record, Path]:
    """The release record of `version` and its folder, refusing a missing, edited or unreadable release."""
    version = normalise_version(version)
    release: Record | None = ws.store.get("release", release_id(version))
    folder = ws.exports_dir / folder_name(version)
    if release is None or not folder.is_dir():
        raise InputError(f"version {version} has not been exported (no {folder}); run `widespec export` first")
    problem = release_problem(release, folder)
    if problem is not None:
        raise WidespecError(f"{folder}: {problem}; a released version must not be edited: export a new version")
    return release, folder


def release_problem(release: Record, folder: Path) -> str | None:
    """What makes `folder` differ from `release` as it was exported, in words; None when it is byte for byte the
    same (every file against the manifest, then the shards' rows against the content hash and row count)."""
    if not folder.is_dir():
        return f"the folder is missing (release {release['version']} was exported)"
    changed = first_difference(folder, release["manifest"]) if "manifest" in release else None
    if changed is not None:
        return f"{changed} since release {release['version']} was exported"
    try:
        digest, rows = folder_content_hash(folder)
    except (pa.ArrowException, OSError):
        digest, rows = "unreadable", -1
    if digest != release["content_hash"] or rows != release["row_count"]:
        return (
            f"its shards no longer match release {release['version']} (unreadable, or content hash or row count "
            "differs)"
        )
    return None
