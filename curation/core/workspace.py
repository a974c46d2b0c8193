"""A workspace folder: config, store, content-addressed images, exports and runtime files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from curation.core import config as config_module
from curation.core.config import CONFIG_FILE, Config
from curation.core.errors import InputError
from curation.core.files import write_atomic
from curation.core.images import ImageStore
from curation.core.lock import Mode, workspace_lock
from curation.core.pairs import backfill_pairs
from curation.core.secrets import configured_secrets, stored_secrets
from curation.core.settings import Settings
from curation.core.store import Store

DB_FILE = "widespec.db"
# What opening an older workspace fills in, by the schema version that adds it: migration 5's pair records.
BACKFILLS = {5: backfill_pairs}


@dataclass
class Workspace:
    """An open workspace; close it (or use it as a context manager) to release the database."""

    root: Path
    config: Config
    store: Store
    _writers: int = field(default=0, repr=False)

    @property
    def settings(self) -> Settings:
        """The config's sections as typed, frozen dataclasses (what stages read)."""
        return Settings.from_config(self.config)

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def images(self) -> ImageStore:
        return ImageStore(self.root / "images")

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    @property
    def runtime_dir(self) -> Path:
        """`.widespec/`: server data, logs, tokens; never exported."""
        return self.root / ".widespec"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def credentials_path(self) -> Path:
        """The local Label Studio's logins (admin and annotators: passwords and API tokens), mode 0600."""
        return self.runtime_dir / "label-studio" / "credentials.json"

    def secrets(self) -> list[str]:
        """Every secret value an error message could echo: the configured tokens' values, HF_TOKEN's, and the
        local Label Studio's passwords and tokens (what the ledger and logs must never hold)."""
        return configured_secrets(self.settings) + stored_secrets(self.credentials_path)

    def resolve_path(self, value: str) -> Path:
        """A path from the config, relative to the workspace root unless absolute."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.root / path

    @contextmanager
    def writing(self, mode: Mode = "exclusive", shard: str | None = None) -> Iterator[None]:
        """Hold the workspace's write lock (re-entrant: stages inside `widespec run` join the run's lock).

        On taking it, runs left `running` by processes that died are marked interrupted.
        """
        if self._writers:
            self._writers += 1
            try:
                yield
            finally:
                self._writers -= 1
            return
        with workspace_lock(self.runtime_dir, mode, shard=shard):
            self._writers = 1
            try:
                self.store.reap_runs()
                yield
            finally:
                self._writers = 0

    def reload_config(self) -> None:
        self.config = config_module.load(self.config_path)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_workspace(root: Path) -> bool:
    return (root / CONFIG_FILE).exists() or (root / DB_FILE).exists()


def init_workspace(root: Path) -> Workspace:
    """Create a workspace in `root` (made if missing); refuses to touch an existing one."""
    if is_workspace(root):
        raise InputError(f"{root}: already a widespec workspace (found {CONFIG_FILE} or {DB_FILE}); nothing changed")
    if root.exists() and not root.is_dir():
        raise InputError(f"{root}: exists and is not a folder")
    root.mkdir(parents=True, exist_ok=True)
    for folder in ("images", "exports", ".widespec", "reports"):
        (root / folder).mkdir(exist_ok=True)
    write_atomic(root / CONFIG_FILE, config_module.default_toml())
    return open_workspace(root)


def open_workspace(root: Path) -> Workspace:
    """Open the workspace in `root`, validating its config and migrating its database forward."""
    if not (root / CONFIG_FILE).exists():
        raise InputError(f"{root}: not a widespec workspace (no {CONFIG_FILE}); create one with `widespec init DIR`")
    cfg = config_module.load(root / CONFIG_FILE)
    # Absolute, so every path a stage derives from it means the same in another process: a Ray actor runs in
    # its own working directory.
    root = root.absolute()
    ws = Workspace(root=root, config=cfg, store=Store(root / DB_FILE, backfills=BACKFILLS))
    finish_moves(ws)  # a command killed between committing a release and renaming its folder left it owed
    return ws


MOVES_KEY = "executor:moves"  # the moves (finished folders renamed into place) owed by the last committed output


def finish_moves(ws: Workspace) -> int:
    """Rename into place the folders whose records committed (a kill between the commit and the rename leaves
    them owed: the next command that opens the workspace finishes them); returns how many it renamed. A folder
    is put in place only with its records, so a release is whole or absent at every instant."""
    owed = ws.store.state_get(MOVES_KEY)
    if not owed:
        return 0
    renamed = 0
    for source, target in (tuple(map(Path, move)) for move in owed):
        if source.exists() and not target.exists():
            source.rename(target)
            renamed += 1
    ws.store.state_put(MOVES_KEY, [])
    return renamed
