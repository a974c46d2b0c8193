"""`widespec backup DEST`: a consistent copy of a workspace, taken while a run may be writing to it.

Order makes it consistent without the workspace lock:
1. `widespec.toml`, and the taxonomy file when the config names one inside the workspace;
2. `widespec.db` through SQLite's online backup API, in one step: the records as of one instant;
3. the images: every image a copied record names exists by then, because an image is written (atomically)
   before the record naming it commits; images written later come along too and cost nothing (a resumed run
   finds them in place);
4. the release folders of the copied release records (a release committed with its folder's rename into place
   still owed is copied from where the folder waits, and the copy owes nothing), then `reports/`.
Images and release files are hard-linked when DEST is on the same filesystem, copied otherwise: both are
immutable once in place (widespec replaces them by renaming, never writes into one), so a link is as good as a
copy; the config, the taxonomy file and reports, which people edit, are always copied. DEST must be new or empty.

Left out: `.widespec/`, the runtime. Built-in tiny models are rebuilt on first use, caches (CLIP embeddings) are
recomputed, the lock and credentials belong to this machine, and a local Label Studio's data is a database its
running server writes; answers a round has pulled are already in widespec.db (stop the server with `widespec
annotate stop` and copy `.widespec/label-studio/` yourself to move a round in progress). Model folders the
config names elsewhere are not copied either.
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from curation.core import config as config_module
from curation.core.config import CONFIG_FILE
from curation.core.console import progress_bar, warn
from curation.core.errors import InputError
from curation.core.files import write_atomic
from curation.core.store import Store, backup_database
from curation.core.workspace import BACKFILLS, DB_FILE, MOVES_KEY

COPIED_ON_FAILED_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES}


@dataclass
class Copier:
    """Places files of the workspace into DEST: a hard link while the filesystem allows one, else a copy."""

    linking: bool = True
    linked: int = 0
    copied: int = 0

    def place(self, source: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        if self.linking:
            try:
                os.link(source, target)
                self.linked += 1
                return
            except OSError as exc:
                if exc.errno not in COPIED_ON_FAILED_LINK:
                    raise
                self.linking = False  # another filesystem (or one without links): copy from now on
        partial = target.with_name(f".{target.name}.partial")
        shutil.copy2(source, partial)  # keeps a release file's read-only mode
        os.replace(partial, target)
        self.copied += 1

    def place_tree(self, source: Path, target: Path) -> None:
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            self.place(path, target / path.relative_to(source))


@dataclass
class BackupResult:
    destination: Path
    images: int
    releases: list[str]
    linked: int
    copied: int

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "destination": str(self.destination)}


def backup_workspace(root: Path, destination: Path) -> BackupResult:
    """Copy the workspace in `root` into `destination` (new or empty), consistently (see the module docstring)."""
    if not (root / CONFIG_FILE).exists():
        raise InputError(f"{root}: not a widespec workspace (no {CONFIG_FILE})")
    root, destination = root.resolve(), destination.absolute()
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise InputError(f"{destination}: exists and is not empty; back up into a new or empty folder")
    if destination.resolve().is_relative_to(root):
        raise InputError(f"{destination}: inside the workspace it would copy; back up into a folder outside it")
    for folder in ("images", "exports", "reports", ".widespec"):
        (destination / folder).mkdir(parents=True, exist_ok=True)
    write_atomic(destination / CONFIG_FILE, (root / CONFIG_FILE).read_bytes())
    _copy_taxonomy(root, destination)
    backup_database(root / DB_FILE, destination / DB_FILE)
    with Store(destination / DB_FILE, backfills=BACKFILLS) as copy:
        releases = {r["path"]: r["version"] for r in copy.iter("release")}
        owed = {Path(target).name: Path(source) for source, target in copy.state_get(MOVES_KEY) or []}
        if owed:
            copy.state_put(MOVES_KEY, [])  # owed by the workspace; its copy gets the folders in place below
        copy.reap_runs(copied=True)  # the copy's ledger: what was running stopped there
    copier = Copier()
    images = sorted(p for p in (root / "images").glob("*/*.png") if not p.name.startswith("."))  # dot: being written
    with progress_bar("back up images", len(images), "images") as bar:
        for path in images:
            copier.place(path, destination / "images" / path.parent.name / path.name)
            bar.advance()
    for name in sorted(releases):
        _copy_release(copier, [root / "exports" / name, owed.get(name)], destination / "exports" / name)
    reports = sorted(p for p in (root / "reports").rglob("*") if p.is_file() and not p.name.startswith("."))
    copies = Copier(linking=False)  # small, and some are written in place (or edited): copied, never linked
    for path in reports:
        copies.place(path, destination / "reports" / path.relative_to(root / "reports"))
    linked, copied = copier.linked, copier.copied + copies.copied
    return BackupResult(destination, len(images), sorted(releases.values()), linked, copied)


def _copy_release(copier: Copier, sources: list[Path | None], target: Path) -> None:
    """A release folder from where it is: in place (`sources[0]`) or, its rename owed, still in its work folder.
    The rename may happen while the folder is read: then the folder is read again, in place."""
    for source in (*sources, sources[0]):
        if source is None or not source.is_dir():
            continue
        try:
            copier.place_tree(source, target)
            return
        except FileNotFoundError:
            shutil.rmtree(target, ignore_errors=True)
    warn(f"{target.name}: the workspace's release folder is missing; the copy lacks it too (`widespec verify`)")


def _copy_taxonomy(root: Path, destination: Path) -> None:
    """The taxonomy file the config names, when it lies inside the workspace: every variant records its hash."""
    value = str(config_module.load(root / CONFIG_FILE)["taxonomy"]["path"])
    if value.startswith("builtin:"):
        return
    path = Path(value).expanduser()
    path = (path if path.is_absolute() else root / path).resolve()
    if path.is_file() and path.is_relative_to(root):
        copier = Copier(linking=False)
        copier.place(path, destination / path.relative_to(root))
