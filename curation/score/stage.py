"""`widespec score`: CLIP embeddings for every pending pair and variant, and their metrics as score rows.

Text checks run first and need no image: how far each variant text moved from its base prompt and how close
it is to an earlier variant of the same base prompt. Then every distinct image is decoded and preprocessed in
DataLoader workers and encoded in batches; every distinct text is encoded once. Embeddings are stored (float16)
and score rows are written as soon as both images of a pair are known, one transaction per batch.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from curation.core.config import config_hash
from curation.core.console import info, progress_bar, warn
from curation.core.ids import stable_id
from curation.core.pairs import Pair, iter_pairs
from curation.core.records import score_record
from curation.core.scorer import scorer_state
from curation.core.store import Record, Store
from curation.core.taxonomy import probe_texts
from curation.core.workspace import Workspace
from curation.score import metrics
from curation.score.clip import ClipEncoder, ModelSource, load_encoder, resolve_device, resolve_source
from curation.score.embeddings import EmbeddingCache, text_key

STAGE = "score"


def scorer_source(ws: Workspace, *, check_hub: bool = True) -> ModelSource:
    """The configured scorer, resolved (a built-in model is built on first use)."""
    section = ws.config["scorer"]
    return resolve_source(
        section["model"],
        section["pretrained"],
        root=ws.root,
        models_dir=ws.runtime_dir / "models",
        check_hub=check_hub,
    )


def scored_subjects(store: Store, metric: str, scorer: str, *, include_failed: bool) -> set[str]:
    """Subjects that already have `metric` from this scorer (failed ones only when they count as done)."""
    return {
        row["subject_id"]
        for row in store.iter("score", metric=metric)
        if row["scorer"] == scorer and (include_failed or row["status"] == "ok")
    }


# -- images -----------------------------------------------------------------------------------------------


class ImageFiles(Dataset[tuple[str, torch.Tensor | None, str | None]]):
    """Images by sha256, decoded and preprocessed in the DataLoader's workers; a bad file is an error string."""

    def __init__(self, items: Sequence[tuple[str, Path]], preprocess: Any) -> None:
        self.items, self.preprocess = items, preprocess

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[str, torch.Tensor | None, str | None]:
        sha, path = self.items[index]
        try:
            with Image.open(path) as image:
                return sha, self.preprocess(image.convert("RGB")), None
        except FileNotFoundError:
            return sha, None, f"image {sha[:12]} is missing from images/"
        except Exception as exc:
            return sha, None, f"image {sha[:12]} cannot be decoded: {type(exc).__name__}: {exc}"


def collate(
    items: list[tuple[str, torch.Tensor | None, str | None]],
) -> tuple[list[str], torch.Tensor | None, dict[str, str]]:
    good = [(sha, tensor) for sha, tensor, _ in items if tensor is not None]
    failures = {sha: error for sha, tensor, error in items if tensor is None and error}
    pixels = torch.stack([t for _, t in good]) if good else None
    return [sha for sha, _ in good], pixels, failures


def image_loader(items: Sequence[tuple[str, Path]], encoder: ClipEncoder, batch_size: int, workers: int) -> DataLoader:
    return DataLoader(
        ImageFiles(items, encoder.preprocess),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=encoder.device.type == "cuda",
        persistent_workers=False,
    )


# -- the stage --------------------------------------------------------------------------------------------


@dataclass
class ScoreResult:
    scorer: str
    variants_scored: int = 0
    pairs_scored: int = 0
    pairs_failed: int = 0
    images_encoded: int = 0
    images_failed: int = 0
    texts_encoded: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def images_per_second(self) -> float:
        return self.images_encoded / self.seconds if self.seconds else 0.0


class TextVectors:
    """Each distinct text encoded once per scorer, then looked up."""

    def __init__(self, encoder: ClipEncoder, cache: EmbeddingCache, result: ScoreResult) -> None:
        self.encoder, self.cache, self.result = encoder, cache, result

    chunk = 2048  # texts per stored file

    def ensure(self, texts: Iterable[str]) -> None:
        """Encode the texts not stored yet, a chunk (one file) at a time."""
        unique = list(dict.fromkeys(texts))
        missing = set(self.cache.missing(text_key(t) for t in unique))
        todo = [t for t in unique if text_key(t) in missing]
        with progress_bar("encode texts", len(todo) if len(todo) > self.chunk else 0, unit="texts") as bar:
            for start in range(0, len(todo), self.chunk):
                part = todo[start : start + self.chunk]
                self.cache.add([text_key(t) for t in part], self.encoder.encode_texts(part))
                self.result.texts_encoded += len(part)
                bar.advance(len(part))

    def __call__(self, texts: Sequence[str]) -> metrics.Matrix:
        return self.cache.matrix([text_key(t) for t in texts])


def score_variant_texts(
    store: Store, variants: list[Record], pending: set[str], texts: TextVectors, scorer: str
) -> int:
    """text_distance for pending variants, and text_sibling_cosine where an earlier sibling exists."""
    bases = {v["base_id"]: store.get("base_prompt", v["base_id"]) for v in variants if v["id"] in pending}
    family = sorted(
        (v for v in variants if v["base_id"] in bases and bases[v["base_id"]]), key=lambda v: (v["base_id"], v["index"])
    )
    if not family:
        return 0
    base_texts = [bases[v["base_id"]]["text"] for v in family]  # type: ignore[index]
    texts.ensure([*base_texts, *(v["text"] for v in family)])
    variant_vectors = texts([v["text"] for v in family])
    distance = metrics.text_distance(variant_vectors, texts(base_texts))
    sibling = metrics.earlier_sibling_cosine(variant_vectors, [v["base_id"] for v in family])
    rows = []
    for i, v in enumerate(family):
        if v["id"] not in pending:
            continue
        rows.append(score_record(v["id"], "text_distance", scorer, float(distance[i])))
        if not np.isnan(sibling[i]):
            rows.append(score_record(v["id"], "text_sibling_cosine", scorer, float(sibling[i])))
    store.put("score", rows, on_conflict="replace")
    return sum(1 for v in family if v["id"] in pending)


def pair_rows(
    pairs: Sequence[Pair],
    images: EmbeddingCache,
    texts: TextVectors,
    probes: dict[str, tuple[str, str]],
    logit_scale: float,
    scorer: str,
) -> list[Record]:
    """Score rows for pairs whose two images are both encoded."""
    variant_image = images.matrix([p.anti_render["image_sha256"] for p in pairs])
    base_image = images.matrix([p.base_render["image_sha256"] for p in pairs])
    variant_text = texts([p.variant["text"] for p in pairs])
    base_text = texts([p.base["text"] for p in pairs])
    values: dict[str, np.ndarray] = {
        "fidelity": metrics.fidelity(variant_image, variant_text),
        "content_kept": metrics.content_kept(variant_image, base_text),
        "direction": metrics.direction(variant_image, base_image, variant_text),
    }
    rows = [score_record(p.id, name, scorer, float(v[i])) for name, v in values.items() for i, p in enumerate(pairs)]
    by_dimension: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(pairs):
        for dim in p.variant["dimensions"]:
            if dim in probes:
                by_dimension[dim].append(i)
    for dim, rows_of_dim in by_dimension.items():
        anti, clean = texts([probes[dim][0]]), texts([probes[dim][1]])
        n = len(rows_of_dim)
        scores = metrics.probe(
            variant_image[rows_of_dim],
            base_image[rows_of_dim],
            np.repeat(anti, n, 0),
            np.repeat(clean, n, 0),
            logit_scale,
        )
        rows += [
            score_record(pairs[i].id, f"probe:{dim}", scorer, float(s))
            for i, s in zip(rows_of_dim, scores, strict=True)
        ]
    return rows


def failed_pair_rows(pair: Pair, probes: dict[str, tuple[str, str]], scorer: str, error: str) -> list[Record]:
    names = [*metrics.PAIR_METRICS, *(f"probe:{d}" for d in pair.variant["dimensions"] if d in probes)]
    return [score_record(pair.id, name, scorer, None, error) for name in names]


def run_score(ws: Workspace, *, text_only: bool = False, retry_failed: bool = False) -> ScoreResult:
    """Score every pending variant (text checks) and pair (CLIP metrics) with the configured scorer."""
    source = scorer_source(ws)
    result = ScoreResult(scorer=source.scorer_id)
    store = ws.store
    for key, value in scorer_state(ws.config["scorer"], source.scorer_id).items():
        store.state_put(key, value)
    started = time.perf_counter()
    run_id = store.start_run(STAGE, config_hash(ws.config))
    try:
        _score(ws, source, result, text_only=text_only, retry_failed=retry_failed)
    except BaseException as exc:
        result.seconds = time.perf_counter() - started
        store.finish_run(run_id, "failed", _counts(result), f"{type(exc).__name__}: {exc}")
        raise
    result.seconds = time.perf_counter() - started
    store.finish_run(run_id, "ok", _counts(result))
    return result


def _counts(result: ScoreResult) -> dict[str, int]:
    return {k: v for k, v in result.as_dict().items() if isinstance(v, int)}


def _score(ws: Workspace, source: ModelSource, result: ScoreResult, *, text_only: bool, retry_failed: bool) -> None:
    store, scorer, section = ws.store, source.scorer_id, ws.config["scorer"]
    variants = list(store.iter("variant", status="ok"))
    pending_variants = {v["id"] for v in variants} - scored_subjects(
        store, "text_distance", scorer, include_failed=True
    )
    pairs = [] if text_only else list(iter_pairs(store))
    done = scored_subjects(store, "fidelity", scorer, include_failed=not retry_failed)
    pending_pairs = [p for p in pairs if p.id not in done]
    if not pending_variants and not pending_pairs:
        info(f"nothing to score with {scorer}")
        return
    encoder = load_encoder(source, resolve_device(section["device"]), section["autocast"])
    folder = ws.runtime_dir / "embeddings" / stable_id("scorer", scorer)
    texts = TextVectors(encoder, EmbeddingCache(folder / "texts"), result)
    images = EmbeddingCache(folder / "images")
    probes = probe_texts(ws.config["taxonomy"]["path"], ws.root)

    if pending_variants:
        result.variants_scored = score_variant_texts(store, variants, pending_variants, texts, scorer)
        info(f"text checks: {result.variants_scored} variants")
    if not pending_pairs:
        return
    unknown = sorted({d for p in pending_pairs for d in p.variant["dimensions"]} - set(probes))
    if unknown:
        warn(f"no probe texts in the taxonomy for {', '.join(unknown)}: those probes are not scored")
    dims = {d for p in pending_pairs for d in p.variant["dimensions"] if d in probes}
    texts.ensure(
        [
            *(p.variant["text"] for p in pending_pairs),
            *(p.base["text"] for p in pending_pairs),
            *(t for d in sorted(dims) for t in probes[d]),
        ]
    )
    # Images in pair order, so pairs complete (and are written) early; each distinct image once.
    needs: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(pending_pairs):
        for sha in dict.fromkeys((p.base_render["image_sha256"], p.anti_render["image_sha256"])):
            needs[sha].append(i)
    waiting = [len({p.base_render["image_sha256"], p.anti_render["image_sha256"]}) for p in pending_pairs]
    failed: dict[str, str] = {}
    ready: list[int] = []

    def resolved(shas: Iterable[str]) -> None:
        for sha in shas:
            for i in needs[sha]:
                waiting[i] -= 1
                if waiting[i] == 0:
                    ready.append(i)

    def flush() -> None:
        good = [pending_pairs[i] for i in ready if not _pair_errors(pending_pairs[i], failed)]
        bad = [pending_pairs[i] for i in ready if _pair_errors(pending_pairs[i], failed)]
        rows = pair_rows(good, images, texts, probes, encoder.logit_scale, scorer) if good else []
        for pair in bad:
            rows += failed_pair_rows(pair, probes, scorer, "; ".join(_pair_errors(pair, failed)))
        with store.transaction():
            store.put("score", rows, on_conflict="replace")
        result.pairs_scored += len(good)
        result.pairs_failed += len(bad)
        ready.clear()

    missing = images.missing(needs)
    resolved([sha for sha in needs if sha not in set(missing)])
    if ready:
        flush()
    items = [(sha, ws.images.path_for(sha)) for sha in missing]
    batch_size, workers = section["batch_size"], section["num_workers"]
    with progress_bar(f"score ({scorer})", len(items), unit="images") as bar:
        for shas, pixels, failures in image_loader(items, encoder, batch_size, workers):
            if pixels is not None:
                images.add(shas, encoder.encode_images(pixels))
                result.images_encoded += len(shas)
            failed.update(failures)
            result.images_failed += len(failures)
            resolved([*shas, *failures])
            flush()
            bar.advance(len(shas) + len(failures))


def _pair_errors(pair: Pair, failed: dict[str, str]) -> list[str]:
    shas = dict.fromkeys((pair.base_render["image_sha256"], pair.anti_render["image_sha256"]))
    return [failed[sha] for sha in shas if sha in failed]
