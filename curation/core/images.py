"""Content-addressed image files: images/ab/<sha256>.png, written atomically."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from curation.core.files import write_atomic


@dataclass(frozen=True)
class ImageStore:
    root: Path

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.png"

    def has(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()

    def read(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    def put(self, png: bytes) -> str:
        """Store PNG bytes under their sha256 and return it. A crash leaves no partial file under that name."""
        sha256 = hashlib.sha256(png).hexdigest()
        target = self.path_for(sha256)
        if target.exists():
            return sha256
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, png)
        return sha256
