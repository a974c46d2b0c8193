"""`widespec score`: CLIP embeddings for every pending pair and variant, and their metrics as score rows.

Text checks run first and need no image: how far each variant text moved from its base prompt and how close
it is to an earlier variant of the same base prompt. Then every distinct image is decoded and preprocessed in
DataLoader workers and encoded in batches; every distinct text is encoded once. Embeddings are stored (float16)
and score rows are written as soon as both images of a pair are known, one transaction per batch.

The stage follows the contract of curation.core.stage: `ScoreStage.plan` reads the store and resolves the
scorer; the compute (`Encode`) loads the encoder, reads and writes only the embedding files under
`.widespec/embeddings/<scorer>/`, and yields the score rows; the executor writes them and keeps the ledger.
"""

from __future__ import annotations

import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from curation.core.clip import ClipEncoder, ModelSource, load_encoder, resolve_device, resolve_source
from curation.core.console import info, progress_bar, warn
from curation.core.errors import ImageDamaged
from curation.core.executor import execute
from curation.core.files import read_each_once
from curation.core.ids import stable_id
from curation.core.images import checked
from curation.core.pairs import iter_pairs
from curation.core.preprocess import BatchedPreprocess, batched
from curation.core.records import score_record
from curation.core.scorer import configured_scorer, scorer_state
from curation.core.stage import Output, Stage, StageResult, Work
from curation.core.store import Record, Store
from curation.core.taxonomy import probe_texts
from curation.core.workspace import Workspace
from curation.score import metrics
from curation.score.embeddings import EmbeddingCache, text_key
from curation.score.pending import pending_score

STAGE = "score"
NOT_FINITE_EMBEDDING = "its embedding is not finite (NaN or inf; on a GPU try scorer.autocast = false)"
# What every score run counts, kept in the ledger (zeros included) and read back into ScoreResult.
COUNTS = ("variants_scored", "pairs_scored", "pairs_failed", "images_encoded", "images_failed", "texts_encoded")


def scorer_source(ws: Workspace, *, check_hub: bool = True) -> ModelSource:
    """The configured scorer, resolved (a built-in model is built on first use)."""
    section = ws.settings.scorer
    return resolve_source(
        section.model,
        section.pretrained,
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


def embeddings_folder(ws: Workspace, scorer: str) -> Path:
    """Where the float16 embeddings of one scorer are kept (a cache: removing it only costs re-encoding)."""
    return ws.runtime_dir / "embeddings" / stable_id("scorer", scorer)


# -- images -----------------------------------------------------------------------------------------------


ImageSource = Path | bytes  # an image file, or its bytes carried by the unit


class ImageFiles(Dataset[tuple[str, np.ndarray | torch.Tensor | None, str | None]]):
    """Images by sha256, checked against it, decoded and preprocessed in the DataLoader's workers; a missing,
    damaged or undecodable file is an error string."""

    def __init__(self, items: Sequence[tuple[str, ImageSource]], preprocess: Any) -> None:
        self.items, self.preprocess = items, preprocess

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[str, np.ndarray | torch.Tensor | None, str | None]:
        sha, source = self.items[index]
        try:
            data = checked(sha, source) if isinstance(source, bytes) else checked(sha, source.read_bytes(), source)
            with Image.open(BytesIO(data)) as image:
                return sha, self.preprocess(image.convert("RGB")), None
        except FileNotFoundError:
            return sha, None, f"image {sha[:12]} is missing from images/"
        except ImageDamaged as exc:
            return sha, None, str(exc)
        except Exception as exc:
            return sha, None, f"image {sha[:12]} cannot be decoded: {type(exc).__name__}: {exc}"


def collate(
    preprocess: BatchedPreprocess, items: list[tuple[str, np.ndarray | torch.Tensor | None, str | None]]
) -> tuple[list[str], torch.Tensor | None, dict[str, str]]:
    good = [(sha, array) for sha, array, _ in items if array is not None]
    failures = {sha: error for sha, array, error in items if array is None and error}
    pixels = preprocess.batch([a for _, a in good]) if good else None
    return [sha for sha, _ in good], pixels, failures


def images_to_encode(pairs: Sequence[PairImages], images: EmbeddingCache) -> list[tuple[str, ImageSource]]:
    """The distinct images of `pairs` with no stored embedding, in pair order (base, then variant)."""
    sources: dict[str, ImageSource] = {}
    for p in pairs:
        sources.setdefault(p.base_sha, p.base_path if p.base_bytes is None else p.base_bytes)
        sources.setdefault(p.anti_sha, p.anti_path if p.anti_bytes is None else p.anti_bytes)
    return [(sha, sources[sha]) for sha in images.missing(sources)]


def image_loader(
    items: Sequence[tuple[str, ImageSource]], encoder: ClipEncoder, batch_size: int, workers: int
) -> DataLoader:
    preprocess = batched(encoder.preprocess)
    return DataLoader(
        ImageFiles(items, preprocess),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=partial(collate, preprocess),
        pin_memory=encoder.device.type == "cuda",
        persistent_workers=False,
    )


# -- units ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantText:
    """One variant of a base prompt that has a variant to text-check: the whole family comes along, because
    the sibling cosine of a pending variant compares it with every earlier variant, scored or not."""

    variant_id: str
    base_id: str
    index: int
    text: str
    base_text: str
    pending: bool


@dataclass(frozen=True)
class PairImages:
    """A pending pair: its texts, dimensions and both images (sha256 and file; the bytes too when it travels)."""

    pair_id: str
    variant_id: str
    variant_text: str
    base_text: str
    dimensions: tuple[str, ...]
    base_sha: str
    anti_sha: str
    base_path: Path
    anti_path: Path
    base_bytes: bytes | None = field(default=None, repr=False)
    anti_bytes: bytes | None = field(default=None, repr=False)


ScoreUnit = VariantText | PairImages


def carry_images(units: Sequence[ScoreUnit]) -> list[ScoreUnit]:
    """The units with their images' bytes inline (each distinct image read once): what the compute needs on a
    machine that cannot see the workspace (`Work.portable`)."""
    data = read_each_once()
    return [
        replace(u, base_bytes=data(u.base_path), anti_bytes=data(u.anti_path)) if isinstance(u, PairImages) else u
        for u in units
    ]


# -- compute ----------------------------------------------------------------------------------------------


class TextVectors:
    """Each distinct text encoded once per scorer, then looked up."""

    def __init__(self, encoder: ClipEncoder, cache: EmbeddingCache) -> None:
        self.encoder, self.cache = encoder, cache
        self._tokens: dict[str, int] = {}

    chunk = 2048  # texts per stored file

    def ensure(self, texts: Iterable[str]) -> int:
        """Encode the texts not stored yet, a chunk (one file) at a time; how many were encoded."""
        unique = list(dict.fromkeys(texts))
        missing = set(self.cache.missing(text_key(t) for t in unique))
        todo = [t for t in unique if text_key(t) in missing]
        with progress_bar("encode texts", len(todo) if len(todo) > self.chunk else 0, unit="texts") as bar:
            for start in range(0, len(todo), self.chunk):
                part = todo[start : start + self.chunk]
                self.cache.add([text_key(t) for t in part], self.encoder.encode_texts(part))
                bar.advance(len(part))
        return len(todo)

    def __call__(self, texts: Sequence[str]) -> metrics.Matrix:
        return self.cache.matrix([text_key(t) for t in texts])

    @property
    def context(self) -> int | None:
        return self.encoder.context

    def tokens(self, *texts: str) -> int | None:
        """The token count of the longest of `texts` (each counted once per run), or None when uncountable."""
        count = self.encoder.count_tokens
        if count is None:
            return None
        todo = [t for t in dict.fromkeys(texts) if t not in self._tokens]
        if todo:
            self._tokens.update(zip(todo, count(todo), strict=True))
        return max(self._tokens[t] for t in texts)


def pair_rows(
    pairs: Sequence[PairImages],
    images: EmbeddingCache,
    texts: TextVectors,
    probes: Mapping[str, tuple[str, str]],
    logit_scale: float,
    scorer: str,
) -> list[Record]:
    """Score rows for pairs whose two images are both encoded."""
    variant_image = images.matrix([p.anti_sha for p in pairs])
    base_image = images.matrix([p.base_sha for p in pairs])
    variant_text = texts([p.variant_text for p in pairs])
    base_text = texts([p.base_text for p in pairs])
    values: dict[str, np.ndarray] = {
        "fidelity": metrics.fidelity(variant_image, variant_text),
        "content_kept": metrics.content_kept(variant_image, base_text),
        "direction": metrics.direction(variant_image, base_image, variant_text),
    }
    read = {"fidelity": "variant_text", "content_kept": "base_text", "direction": "variant_text"}
    texts.tokens(*(p.variant_text for p in pairs), *(p.base_text for p in pairs))  # counted in one batch
    rows = [
        score_record(
            p.pair_id,
            name,
            scorer,
            float(v[i]),
            text_tokens=texts.tokens(getattr(p, read[name])),
            context=texts.context,
        )
        for name, v in values.items()
        for i, p in enumerate(pairs)
    ]
    by_dimension: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(pairs):
        for dim in p.dimensions:
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
            score_record(pairs[i].pair_id, f"probe:{dim}", scorer, float(s))
            for i, s in zip(rows_of_dim, scores, strict=True)
        ]
    return rows


def failed_pair_rows(pair: PairImages, probes: Mapping[str, tuple[str, str]], scorer: str, error: str) -> list[Record]:
    names = [*metrics.PAIR_METRICS, *(f"probe:{d}" for d in pair.dimensions if d in probes)]
    return [score_record(pair.pair_id, name, scorer, None, error) for name in names]


def _pair_errors(pair: PairImages, failed: dict[str, str]) -> list[str]:
    shas = dict.fromkeys((pair.base_sha, pair.anti_sha))
    return [failed[sha] for sha in shas if sha in failed]


@dataclass(frozen=True)
class Encode:
    """The score stage's compute: the configured open_clip scorer and where its embeddings are kept.

    `opened()` loads the encoder once; `run` then yields the text-check rows, and the rows of pairs as soon as
    both of their images are encoded (or failed). It never touches the store, only the embedding files.
    """

    source: ModelSource
    device: str
    autocast: bool
    folder: Path
    probes: Mapping[str, tuple[str, str]]
    batch_size: int
    workers: int
    encoder: ClipEncoder | None = field(default=None, repr=False, compare=False)

    @property
    def scorer(self) -> str:
        return self.source.scorer_id

    @contextmanager
    def opened(self) -> Iterator[Encode]:
        encoder = load_encoder(self.source, resolve_device(self.device), self.autocast)
        if self.folder.parent.parent.is_dir():
            yield replace(self, encoder=encoder)
            return
        # A Ray actor on a machine without the workspace keeps its embeddings for this run only.
        with tempfile.TemporaryDirectory(prefix="widespec-embeddings-") as folder:
            yield replace(self, encoder=encoder, folder=Path(folder))

    def run(self, units: Sequence[ScoreUnit]) -> Iterator[Output]:
        if self.encoder is None:
            raise RuntimeError("Encode.run needs the encoder: use it inside `with compute.opened() as c`")
        texts = TextVectors(self.encoder, EmbeddingCache(self.folder / "texts"))
        family = [u for u in units if isinstance(u, VariantText)]
        pairs = [u for u in units if isinstance(u, PairImages)]
        if family:
            yield self.text_checks(family, texts)
        if pairs:
            yield from self.score_pairs(pairs, self.encoder, texts, EmbeddingCache(self.folder / "images"))

    def text_checks(self, family: Sequence[VariantText], texts: TextVectors) -> Output:
        """text_distance for pending variants, and text_sibling_cosine where an earlier sibling exists."""
        family = sorted(family, key=lambda u: (u.base_id, u.index))
        base_texts = [u.base_text for u in family]
        encoded = texts.ensure([*base_texts, *(u.text for u in family)])
        variant_vectors = texts([u.text for u in family])
        distance = metrics.text_distance(variant_vectors, texts(base_texts))
        sibling = metrics.earlier_sibling_cosine(variant_vectors, [u.base_id for u in family])
        rows = []
        context = texts.context
        texts.tokens(*base_texts, *(u.text for u in family))  # counted in one batch
        first: dict[
            str, int
        ] = {}  # the position of each family's first variant (families are contiguous, in index order)
        for i, u in enumerate(family):
            first.setdefault(u.base_id, i)
            if not u.pending:
                continue
            tokens = texts.tokens(u.text, u.base_text)
            rows.append(
                score_record(
                    u.variant_id, "text_distance", self.scorer, float(distance[i]), text_tokens=tokens, context=context
                )
            )
            if not np.isnan(sibling[i]):
                earlier = [e.text for e in family[first[u.base_id] : i]]
                rows.append(
                    score_record(
                        u.variant_id,
                        "text_sibling_cosine",
                        self.scorer,
                        float(sibling[i]),
                        text_tokens=texts.tokens(u.text, *earlier),
                        context=context,
                    )
                )
        scored = sum(1 for u in family if u.pending)
        info(f"text checks: {scored} variants")
        return Output(records={"score": rows}, counts=Counter(variants_scored=scored, texts_encoded=encoded))

    def score_pairs(
        self,
        pairs: Sequence[PairImages],
        encoder: ClipEncoder,
        texts: TextVectors,
        images: EmbeddingCache,
    ) -> Iterator[Output]:
        """Each distinct image encoded once, in pair order so pairs complete (and are written) early."""
        probes = self.probes
        dims = {d for p in pairs for d in p.dimensions if d in probes}
        carried = Counter(
            texts_encoded=texts.ensure(
                [
                    *(p.variant_text for p in pairs),
                    *(p.base_text for p in pairs),
                    *(t for d in sorted(dims) for t in probes[d]),
                ]
            )
        )
        needs: dict[str, list[int]] = defaultdict(list)
        for i, p in enumerate(pairs):
            for sha in dict.fromkeys((p.base_sha, p.anti_sha)):
                needs[sha].append(i)
        waiting = [len({p.base_sha, p.anti_sha}) for p in pairs]
        failed: dict[str, str] = {}
        ready: list[int] = []

        def resolved(shas: Iterable[str]) -> None:
            for sha in shas:
                for i in needs[sha]:
                    waiting[i] -= 1
                    if waiting[i] == 0:
                        ready.append(i)

        def flush(counts: Counter[str]) -> Output:
            good = [pairs[i] for i in ready if not _pair_errors(pairs[i], failed)]
            bad = [pairs[i] for i in ready if _pair_errors(pairs[i], failed)]
            rows = pair_rows(good, images, texts, probes, encoder.logit_scale, self.scorer) if good else []
            for pair in bad:
                rows += failed_pair_rows(pair, probes, self.scorer, "; ".join(_pair_errors(pair, failed)))
            not_finite = {r["subject_id"] for r in rows if r["status"] == "failed"} - {p.pair_id for p in bad}
            counts.update(pairs_scored=len(good) - len(not_finite), pairs_failed=len(bad) + len(not_finite))
            output = Output(records={"score": rows}, counts=counts, advance=len(ready))
            ready.clear()
            return output

        items = images_to_encode(pairs, images)
        absent = {sha for sha, _ in items}
        resolved([sha for sha in needs if sha not in absent])
        if ready:
            yield flush(carried)
            carried = Counter()
        for shas, pixels, failures in image_loader(items, encoder, self.batch_size, self.workers):
            batch, carried = carried, Counter()
            not_finite: dict[str, str] = {}
            if pixels is not None:
                vectors = encoder.encode_images(pixels)
                finite = np.asarray(np.isfinite(vectors).all(axis=1))
                not_finite = {
                    sha: f"image {sha[:12]}: {NOT_FINITE_EMBEDDING}"
                    for sha, ok in zip(shas, finite.tolist(), strict=True)
                    if not ok
                }
                images.add([sha for sha in shas if sha not in not_finite], vectors[finite])
                batch["images_encoded"] += len(shas) - len(not_finite)
            failed.update(failures | not_finite)
            batch["images_failed"] += len(failures) + len(not_finite)
            resolved([*shas, *failures])
            yield flush(batch)
        if carried:
            yield Output(counts=carried)


# -- the stage --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreOptions:
    retry_failed: bool = False


class ScoreStage(Stage):
    """CLIP metrics for every pending pair, with the configured scorer (the text checks are a stage of their own:
    curation.score.text_checks)."""

    name = "score"
    needs = ("pair", "variant", "base_prompt")
    makes = ("score",)
    distributable = True

    def pending(self, ws: Workspace) -> int:
        """Pairs with no fidelity score from the configured scorer (no model is loaded)."""
        return pending_score(ws)

    def plan(self, ws: Workspace, options: ScoreOptions | None = None) -> Work:
        options = options or ScoreOptions()
        store, section = ws.store, ws.settings.scorer
        source = scorer_source(ws)
        scorer = source.scorer_id
        pairs = pair_units(ws, scorer, retry_failed=options.retry_failed)
        units: list[ScoreUnit] = [*pairs]
        details = {"scorer": scorer}
        if not units and configured_scorer(store, section) == scorer:
            return Work([], details=details)
        probes: dict[str, tuple[str, str]] = {}
        if pairs:
            probes = probe_texts(ws.settings.taxonomy.path, ws.root)
            unknown = sorted({d for p in pairs for d in p.dimensions} - set(probes))
            if unknown:
                warn(f"no probe texts in the taxonomy for {', '.join(unknown)}: those probes are not scored")
        compute = Encode(
            source,
            section.device,
            section.autocast,
            embeddings_folder(ws, scorer),
            probes,
            section.batch_size,
            section.num_workers,
        )
        # The resolved scorer id is durable state (the filter, export and report select scores by it); the
        # zero counts keep every count in the ledger, as before the stage contract.
        before = Output(state=scorer_state(section, scorer), counts=Counter(dict.fromkeys(COUNTS, 0)))
        return Work(
            units,
            compute.opened,
            portable=carry_images,
            before=before,
            label=f"score ({scorer})",
            unit="pairs",
            total=len(pairs),
            details=details,
        )

    def summary(self, result: StageResult) -> str:
        c = result.counts
        if result.nothing_to_do:
            return f"nothing to score with {result.details.get('scorer', 'the configured scorer')}"
        return (
            f"{c['pairs_scored']} pairs scored, {c['pairs_failed']} failed, {c['variants_scored']} texts; "
            f"{c['images_encoded']} images encoded"
        )


def variant_units(store: Store, scorer: str) -> list[VariantText]:
    """The families (variants of one base prompt, in index order) that hold a variant without text checks."""
    variants = list(store.iter("variant", status="ok"))
    pending = {v["id"] for v in variants} - scored_subjects(store, "text_distance", scorer, include_failed=True)
    bases = {v["base_id"]: store.get("base_prompt", v["base_id"]) for v in variants if v["id"] in pending}
    family = sorted(
        (v for v in variants if v["base_id"] in bases and bases[v["base_id"]]), key=lambda v: (v["base_id"], v["index"])
    )
    return [
        VariantText(
            v["id"],
            v["base_id"],
            v["index"],
            v["text"],
            bases[v["base_id"]]["text"],  # type: ignore[index]
            v["id"] in pending,
        )
        for v in family
    ]


def pair_units(ws: Workspace, scorer: str, *, retry_failed: bool) -> list[PairImages]:
    """Complete pairs with no fidelity score from `scorer` (or only a failed one, when retrying)."""
    done = scored_subjects(ws.store, "fidelity", scorer, include_failed=not retry_failed)
    return [
        PairImages(
            p.id,
            p.variant["id"],
            p.variant["text"],
            p.base["text"],
            tuple(p.variant["dimensions"]),
            p.base_render["image_sha256"],
            p.anti_render["image_sha256"],
            ws.images.path_for(p.base_render["image_sha256"]),
            ws.images.path_for(p.anti_render["image_sha256"]),
        )
        for p in iter_pairs(ws.store)
        if p.id not in done
    ]


SCORE = ScoreStage()


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

    @classmethod
    def from_stage(cls, result: StageResult) -> ScoreResult:
        counts = {name: int(result.counts.get(name, 0)) for name in COUNTS}
        return cls(scorer=str(result.details.get("scorer", "")), seconds=result.seconds, **counts)


def run_score(ws: Workspace, *, retry_failed: bool = False) -> ScoreResult:
    """Score every pending pair (CLIP metrics) with the configured scorer."""
    result = execute(ws, SCORE, ScoreOptions(retry_failed=retry_failed))
    if result.nothing_to_do:
        info(result.summary)
    return ScoreResult.from_stage(result)
