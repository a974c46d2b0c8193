"""Atomic file writes (a reader sees the old file or the whole new one, never a partial write), and reading files
once each."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: Path, data: bytes | str, *, private: bool = False) -> None:
    """Write `data` to a temporary file beside `path`, flush it to disk, then rename it over `path`.

    `private` makes the file readable by its owner only (tokens, credentials).
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600 if private else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_once(target: Path, marker: str, build: Callable[[Path], None], *, seed: int = 0) -> Path:
    """The folder `target`, built by `build(staging)` (torch seeded with `seed`) on first use.

    The folder is built beside its place and renamed into it, so concurrent processes and a kill at any moment
    never leave a half-built folder where a loader looks; `marker` is the file whose presence means "built".
    """
    if (target / marker).exists():
        return target
    import torch

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".build-{target.name}-"))
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            build(staging)
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / marker).exists():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def read_each_once() -> Callable[[str | Path], bytes | None]:
    """A reader that reads each file once (units sharing an image then carry one copy of its bytes); None for a
    file that cannot be read, so whoever opens it later reports why, as it would have without the bytes."""
    read: dict[str, bytes | None] = {}

    def data(path: str | Path) -> bytes | None:
        key = str(path)
        if key not in read:
            try:
                read[key] = Path(key).read_bytes()
            except OSError:
                read[key] = None
        return read[key]

    return data
