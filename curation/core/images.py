"""Content-addressed image files: images/ab/<sha256>.png, written atomically."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from curation.core.files import write_atomic


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
        with open(self._name(sha256), "rb") as handle:
            return handle.read()

    def put(self, png: bytes) -> str:
        """Store PNG bytes under their sha256 and return it. A crash leaves no partial file under that name."""
        sha256 = hashlib.sha256(png).hexdigest()
        target = self.path_for(sha256)
        if target.exists():
            return sha256
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, png)
        return sha256
