"""Reading a population's images in DataLoader workers: each pair's two images decoded and preprocessed for the
model, then gathered per batch so every distinct image (a base image shared by several variants) and every
distinct prompt is encoded once."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch
from numpy.typing import NDArray
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from curation.audit.population import AuditUnit, ImageRef
from curation.core.errors import ImageDamaged
from curation.core.files import read_each_once
from curation.core.preprocess import BatchedPreprocess


class ShardImages:
    """Image bytes of parquet rows, one row group at a time, both image columns in one read (units come in row
    order: a group is read once per worker)."""

    COLUMNS = ("image_anti", "image_base")

    def __init__(self) -> None:
        self._key: tuple[str, int] | None = None
        self._columns: dict[str, list[Any]] = {}

    def read(self, ref: ImageRef) -> bytes:
        key = (ref.path, ref.row_group)
        if key != self._key:
            table = pq.ParquetFile(ref.path).read_row_group(ref.row_group, columns=list(self.COLUMNS))
            self._columns = {c: table.column(c).to_pylist() for c in self.COLUMNS}
            self._key = key
        return bytes(self._columns[ref.column][ref.row]["bytes"])

    def read_ref(self, ref: ImageRef) -> bytes:
        """The bytes `ref` names: its PNG file or its shard cell."""
        return Path(ref.path).read_bytes() if ref.row_group < 0 else self.read(ref)


def carry_images(units: Sequence[AuditUnit]) -> list[AuditUnit]:
    """The units with their images' bytes inline (each file read once): what the compute needs on a machine
    that cannot see the workspace or the release (`Work.portable`). An image that cannot be read stays a
    reference, and the compute reports it as it would have."""
    shards, files = ShardImages(), read_each_once()

    def inline(ref: ImageRef) -> ImageRef:
        try:
            data = files(ref.path) if ref.row_group < 0 else shards.read(ref)
        except Exception:
            data = None
        return ref if data is None else replace(ref, data=data)

    return [replace(u, anti_image=inline(u.anti_image), base_image=inline(u.base_image)) for u in units]


Loaded = tuple[str, Any, str | None]  # (image key, model input or None, error or None)


class PairImages(Dataset[tuple[int, tuple[Loaded, Loaded]]]):
    """Item i: i with the anti and the base image of unit i, each keyed by the sha256 of its bytes."""

    def __init__(self, units: Sequence[AuditUnit], preprocess: BatchedPreprocess) -> None:
        self.units, self.preprocess, self.shards = units, preprocess, ShardImages()

    def __len__(self) -> int:
        return len(self.units)

    def _load(self, ref: ImageRef, side: str) -> Loaded:
        try:
            data = ref.data if ref.data is not None else self.shards.read_ref(ref)
        except FileNotFoundError:
            return "", None, f"the {side} image is missing ({ref.path})"
        except Exception as exc:
            return "", None, f"the {side} image cannot be read: {type(exc).__name__}: {exc}"
        key = hashlib.sha256(data).hexdigest()
        if ref.sha256 and key != ref.sha256:
            return key, None, f"the {side} {ImageDamaged(ref.sha256, ref.path)}"
        try:
            with Image.open(BytesIO(data)) as image:
                return key, self.preprocess(image.convert("RGB")), None
        except Exception as exc:
            return key, None, f"the {side} image cannot be decoded: {type(exc).__name__}: {exc}"

    def __getitem__(self, index: int) -> tuple[int, tuple[Loaded, Loaded]]:
        unit = self.units[index]
        return index, (self._load(unit.anti_image, "anti"), self._load(unit.base_image, "base"))


@dataclass
class Batch:
    """The units of one batch with their images gathered: `pixels` holds each distinct image once, and
    `anti_rows`/`base_rows` point into it (-1 where the unit failed, with its error in `errors`)."""

    indices: list[int]
    pixels: torch.Tensor | None
    anti_rows: NDArray[np.int64]
    base_rows: NDArray[np.int64]
    errors: dict[int, str]


def collate(preprocess: BatchedPreprocess, indices_and_items: list[tuple[int, tuple[Loaded, Loaded]]]) -> Batch:
    rows: dict[str, int] = {}
    arrays: list[Any] = []
    anti, base, errors = [], [], {}
    for index, (anti_item, base_item) in indices_and_items:
        failure = anti_item[2] or base_item[2]
        if failure:
            errors[index] = failure
            anti.append(-1)
            base.append(-1)
            continue
        for (key, array, _), out in ((anti_item, anti), (base_item, base)):
            if key not in rows:
                rows[key] = len(arrays)
                arrays.append(array)
            out.append(rows[key])
    pixels = preprocess.batch(arrays) if arrays else None
    indices = [index for index, _ in indices_and_items]
    return Batch(indices, pixels, np.array(anti, dtype=np.int64), np.array(base, dtype=np.int64), errors)


def batches(
    units: Sequence[AuditUnit], preprocess: BatchedPreprocess, batch_size: int, workers: int, pin: bool
) -> DataLoader[Any]:
    """Batches of units in order, images decoded in `workers` processes (0: in this one)."""
    return DataLoader(
        PairImages(units, preprocess),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=partial(collate, preprocess),
        pin_memory=pin,
    )
