"""`widespec verify`: is a workspace whole? The database against SQLite's integrity check, every image under
images/ against the sha256 it is named after, every image a render record names against its presence, and every
release folder under exports/ against its release record (manifest, content hash, row count).

It only reads: the database through a read-only connection (no migration, no lock), so it runs beside a writing
`widespec run`. Records are read before the files they name are looked at: an image is written before the record
naming it commits, and a release folder is renamed into place right after its record commits (a folder still
owed that rename is checked where it is), so a concurrent run never makes a sound workspace look damaged.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from curation.core.config import CONFIG_FILE
from curation.core.console import progress_bar
from curation.core.errors import InputError, WidespecError
from curation.core.images import ImageStore, relative_name
from curation.core.store import Record, Store, integrity_problems
from curation.core.workspace import DB_FILE, MOVES_KEY
from exports.integrity import release_problem
from exports.versions import TEMP_PREFIX, folder_name, normalise_version, release_id

OK, DAMAGED, MISSING = "ok", "damaged", "missing"


@dataclass(frozen=True)
class Finding:
    """One line of the verdict: what was checked (`check`: database, images, image, release), which one, its
    status (ok, damaged, missing) and why."""

    check: str
    subject: str
    status: str
    detail: str


@dataclass
class Verification:
    workspace: Path
    findings: list[Finding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return all(f.status == OK for f in self.findings)

    def as_dict(self) -> dict[str, Any]:
        return {
            "workspace": str(self.workspace),
            "clean": self.clean,
            "findings": [asdict(f) for f in self.findings],
        }


@dataclass
class Records:
    """What the records name, read in one go before any file is looked at."""

    images: dict[str, str]  # sha256 -> the first render naming it
    releases: list[Record]
    owed: dict[Path, Path]  # release folder -> where it waits to be renamed from


def verify_workspace(root: Path) -> Verification:
    """Check the workspace in `root`, reading only; each problem is a finding (see the module docstring)."""
    if not (root / CONFIG_FILE).exists():
        raise InputError(f"{root}: not a widespec workspace (no {CONFIG_FILE})")
    root = root.absolute()
    result = Verification(root)
    problems = integrity_problems(root / DB_FILE)
    detail = "; ".join(problems[:3]) + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else "")
    result.findings.append(Finding("database", DB_FILE, DAMAGED if problems else OK, detail or "integrity_check ok"))
    store, records = None, None
    if not problems:
        try:
            store = Store(root / DB_FILE, read_only=True)
            records = _records(store)
        except (sqlite3.DatabaseError, WidespecError) as exc:
            result.findings.append(Finding("database", DB_FILE, DAMAGED, f"its records cannot be read: {exc}"))
    try:
        result.findings += _images(ImageStore(root / "images"), records.images if records else {})
        if store is not None and records is not None:
            result.findings += _releases(root / "exports", store, records)
    finally:
        if store is not None:
            store.close()
    return result


def _records(store: Store) -> Records:
    images: dict[str, str] = {}
    for render in store.iter("render"):
        if render["image_sha256"]:
            images.setdefault(render["image_sha256"], render["id"])
    owed = {Path(target): Path(source) for source, target in store.state_get(MOVES_KEY) or []}
    return Records(images, list(store.iter("release")), owed)


def _images(images: ImageStore, referenced: dict[str, str]) -> list[Finding]:
    """Every PNG under images/ against its name, then every image a record names against its presence."""
    files = sorted(p for p in images.root.glob("*/*.png") if not p.name.startswith("."))  # dot files: being written
    found: list[Finding] = []
    with progress_bar("verify images", len(files), "images") as bar:
        for path in files:
            bar.advance()
            subject = f"images/{path.parent.name}/{path.name}"
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError as exc:
                found.append(Finding("image", subject, DAMAGED, f"cannot be read: {exc}"))
                continue
            if digest != path.stem or path.parent.name != path.stem[:2]:
                found.append(Finding("image", subject, DAMAGED, f"its bytes hash to {digest}, not to its name"))
    missing = [sha for sha in sorted(referenced) if not images.has(sha)]
    found += [Finding("image", relative_name(sha), MISSING, f"render {referenced[sha]} names it") for sha in missing]
    summary = f"{len(files)} files checked, {len(found) - len(missing)} damaged, {len(missing)} missing"
    return [Finding("images", "images/", DAMAGED if found else OK, summary), *found]


def _releases(exports: Path, store: Store, records: Records) -> list[Finding]:
    """Every released version's folder against its record, and every version folder against some record."""
    found = [_release(exports, release, records.owed) for release in records.releases]
    known = {r["path"] for r in records.releases}
    others = sorted(p for p in exports.iterdir() if p.is_dir() and p.name not in known) if exports.is_dir() else []
    for folder in others:
        if folder.name.startswith((TEMP_PREFIX, ".")):
            continue  # an export at work, or the leftovers of a killed one (the next export removes them)
        release = _record_of(store, folder.name)  # committed since the records were read?
        if release is None:
            found.append(Finding("release", folder.name, DAMAGED, "no release record holds this folder"))
        else:
            found.append(_release(exports, release, records.owed))
    return found


def _release(exports: Path, release: Record, owed: dict[Path, Path]) -> Finding:
    folder = exports / release["path"]
    if not folder.is_dir() and owed.get(folder, folder).is_dir():
        folder = owed[folder]  # committed, its rename into place still owed
    problem = release_problem(release, folder)
    files = len(release.get("manifest", {}))
    status = OK if problem is None else DAMAGED if folder.is_dir() else MISSING
    return Finding("release", folder_name(release["version"]), status, problem or f"{files} files match the manifest")


def _record_of(store: Store, name: str) -> Record | None:
    try:
        version = normalise_version(name.removeprefix("v"))
    except InputError:
        return None
    release = store.get("release", release_id(version))
    return release if release is not None and folder_name(version) == name else None
