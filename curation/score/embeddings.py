"""Stored CLIP embeddings: float16 unit vectors keyed by image sha256 or text hash, one file per batch.

Files live under `.widespec/embeddings/<scorer>/{images,texts}/` as safetensors (the keys in the file's
metadata) and are written atomically, so a killed run keeps every finished batch and a rerun encodes only what
is missing. Thresholds act on score rows; nothing is re-encoded to change one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from curation.core.ids import content_hash
from curation.score.metrics import Matrix, normalise


def text_key(text: str) -> str:
    return content_hash(text)[:32]


class EmbeddingCache:
    """Embeddings of one kind (images or texts) for one scorer."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._rows: dict[str, np.ndarray] | None = None

    def _index(self) -> dict[str, np.ndarray]:
        if self._rows is None:
            self._rows = {}
            for path in sorted(self.folder.glob("*.safetensors")):
                with safe_open(str(path), framework="np") as handle:
                    keys = json.loads((handle.metadata() or {})["keys"])
                    matrix = handle.get_tensor("embeddings")
                self._rows.update(zip(keys, matrix, strict=True))
        return self._rows

    def __contains__(self, key: str) -> bool:
        return key in self._index()

    def __len__(self) -> int:
        return len(self._index())

    def missing(self, keys: Iterable[str]) -> list[str]:
        index = self._index()
        return [k for k in dict.fromkeys(keys) if k not in index]

    def matrix(self, keys: Sequence[str]) -> Matrix:
        """The stored vectors for `keys`, as float32 unit vectors in that order."""
        index = self._index()
        return normalise(np.stack([index[k] for k in keys])) if keys else np.zeros((0, 0), np.float32)

    def add(self, keys: Sequence[str], vectors: Matrix) -> None:
        """Store one batch (float16) in its own file."""
        if not keys:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        half = np.ascontiguousarray(vectors, dtype=np.float16)
        target = self.folder / f"{content_hash(list(keys))[:24]}.safetensors"
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        save_file({"embeddings": half}, str(tmp), metadata={"keys": json.dumps(list(keys))})
        os.replace(tmp, target)
        self._index().update(zip(keys, half, strict=True))
