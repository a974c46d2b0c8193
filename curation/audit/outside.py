"""Outside images (artworks, photographs: the paper's Figure 4) scored by a reward model and placed against the
distribution of a population's images under the same model: each image's z-score, and its percentile among the
population's base images and among its anti-aesthetic images (each read under its own prompt)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from curation.audit.models import RewardModel
from curation.audit.population import AuditUnit
from curation.audit.stage import audits_of
from curation.core.errors import InputError
from curation.core.store import Store

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass(frozen=True)
class OutsideImage:
    path: Path
    prompt: str


def read_prompts(path: Path, folder: Path) -> list[OutsideImage]:
    """A CSV (columns image, prompt) or JSONL ({"image", "prompt"}) naming images in `folder`."""
    if not path.is_file():
        raise InputError(f"--prompts {path}: no such file")
    rows: list[tuple[int, Any]]  # (line number in the file, row)
    if path.suffix == ".jsonl":
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    rows.append((number, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}: row {number}: not JSON: {exc.msg}") from None
    elif path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            rows = [(number, row) for number, row in enumerate(csv.DictReader(handle), 2)]  # line 1: the header
    else:
        raise InputError(f"--prompts {path}: expected .csv (image,prompt) or .jsonl")
    items = []
    for number, row in rows:
        if not isinstance(row, dict):
            raise InputError(f"{path}: row {number}: expected an object with image and prompt")
        image, prompt = row.get("image"), row.get("prompt")
        if not isinstance(image, str) or not image or not isinstance(prompt, str) or not prompt.strip():
            raise InputError(f"{path}: row {number}: needs a non-empty image and prompt")
        file = folder / image
        if not file.is_file():
            raise InputError(f"{path}: row {number}: image {image!r} is not in {folder}")
        if file.suffix.lower() not in IMAGE_SUFFIXES:
            raise InputError(f"{path}: row {number}: {image!r} is not a {'/'.join(IMAGE_SUFFIXES)} image")
        items.append(OutsideImage(file, prompt))
    if not items:
        raise InputError(f"{path}: names no images")
    return items


def score_images(model: RewardModel, items: Sequence[OutsideImage], batch_size: int) -> list[float]:
    """Each image's score under its own prompt."""
    scores: list[float] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        arrays = []
        for item in chunk:
            try:
                with Image.open(item.path) as image:
                    arrays.append(model.preprocess(image.convert("RGB")))
            except Exception as exc:
                raise InputError(f"{item.path}: cannot be decoded: {type(exc).__name__}: {exc}") from None
        scores += [float(v) for v in model.score(model.preprocess.batch(arrays), [i.prompt for i in chunk])]
    return scores


@dataclass(frozen=True)
class Placement:
    image: str
    prompt: str
    score: float
    z: float | None
    base_percentile: float | None
    anti_percentile: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def reference_scores(
    store: Store, population: str, model: str, units: Sequence[AuditUnit]
) -> tuple[np.ndarray, np.ndarray]:
    """The population's base images under base prompts and anti images under anti prompts, by `model`, from
    the ok audits of its current pairs."""
    records = [r for r in audits_of(store, population, model, units) if r is not None and r["status"] == "ok"]
    base = [r["scores"]["base_image_base_prompt"] for r in records]
    anti = [r["scores"]["anti_image_anti_prompt"] for r in records]
    return np.array(base, dtype=np.float64), np.array(anti, dtype=np.float64)


def _percentile(value: float, reference: np.ndarray) -> float | None:
    """The share of `reference` below `value` (ties count half), in percent."""
    if not len(reference):
        return None
    return float(100 * ((reference < value).sum() + 0.5 * (reference == value).sum()) / len(reference))


def place(
    items: Sequence[OutsideImage], scores: Sequence[float], base: np.ndarray, anti: np.ndarray
) -> list[Placement]:
    pooled = np.concatenate([base, anti])
    std = float(pooled.std(ddof=1)) if len(pooled) > 1 else 0.0
    mean = float(pooled.mean()) if len(pooled) else 0.0
    return [
        Placement(
            item.path.name,
            item.prompt,
            score,
            (score - mean) / std if std > 0 else None,
            _percentile(score, base),
            _percentile(score, anti),
        )
        for item, score in zip(items, scores, strict=True)
    ]
