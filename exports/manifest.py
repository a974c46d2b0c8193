"""The manifest of a version folder: every file's sha256, stored with the release and checked before publishing."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def folder_manifest(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under `folder`, in path order."""
    files = sorted((p.relative_to(folder).as_posix(), p) for p in folder.rglob("*") if p.is_file())
    return {name: file_sha256(path) for name, path in files}


def first_difference(folder: Path, manifest: Mapping[str, str]) -> str | None:
    """The first file (in path order) that is missing, added or changed against `manifest`, said in words."""
    present = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
    for name in sorted(set(present) | set(manifest)):
        if name not in present:
            return f"{name} is missing"
        if name not in manifest:
            return f"{name} was added"
        if file_sha256(present[name]) != manifest[name]:
            return f"{name} was changed"
    return None
