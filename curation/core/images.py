"""Content-addressed image files: images/ab/<sha256>.png, written atomically."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from curation.core.errors import ImageDamaged
from curation.core.files import write_atomic


def relative_name(sha256: str) -> str:
    """Where an image lives inside a workspace: images/ab/<sha256>.png."""
    return f"images/{sha256[:2]}/{sha256}.png"


def checked(sha256: str, data: bytes, path: str | os.PathLike[str] | None = None) -> bytes:
    """`data` when it hashes to `sha256`; else ImageDamaged naming the image and `path` (its file in the workspace
    by default). Hashing bytes already in memory costs far less than reading or decoding them."""
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ImageDamaged(sha256, os.fspath(path) if path is not None else relative_name(sha256))
    return data


@dataclass(frozen=True)
class ImageStore:
    root: Path
    _prefix: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Exports and scoring read tens of thousands of files: a plain string path skips pathlib's per-call cost.
        object.__setattr__(self, "_prefix", os.path.join(self.root, ""))

    def _name(self, sha256: str) -> str:
        return f"{self._prefix}{sha256[:2]}/{sha256}.png"

    def path_for(self, sha256: str) -> Path:
        return Path(self._name(sha256))

    def has(self, sha256: str) -> bool:
        return os.path.exists(self._name(sha256))

    def read(self, sha256: str) -> bytes:
        """The bytes stored under `sha256`, checked against it: ImageDamaged when they hash to anything else
        (FileNotFoundError when the file is missing)."""
        name = self._name(sha256)
        with open(name, "rb") as handle:
            return checked(sha256, handle.read(), name)

    def put(self, png: bytes) -> str:
        """Store PNG bytes under their sha256 and return it. A crash leaves no partial file under that name."""
        sha256 = hashlib.sha256(png).hexdigest()
        target = self.path_for(sha256)
        if target.exists():
            return sha256
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, png)
        return sha256
