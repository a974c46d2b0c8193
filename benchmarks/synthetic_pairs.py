"""Synthetic pairs for the score benchmark and the score and filter tests: prompt, variant and render records
written with the kernel's record constructors, and real PNGs."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from curation.core.ids import content_hash, stable_id
from curation.core.pairs import pair_id, put_renders
from curation.core.records import LEXICON_REWRITER, base_prompt_record, pairing_key, render_record, variant_record
from curation.core.workspace import Workspace

GENERATOR = "tiny-test-generator"
# Made up for tests and benchmarks, it licenses its images as the built-in tiny models do.
GENERATOR_FIELDS = {"model": GENERATOR, "revision": None, "license": "apache-2.0"}
TAXONOMY = {"name": "widespec-core", "version": "1.0.0", "hash": content_hash("taxonomy")}


def png(seed: int, size: int = 64) -> bytes:
    """A real PNG: smooth colour field plus noise, different for every seed."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=3)
    noise = rng.integers(-40, 40, size=(size, size, 3))
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class MadePair:
    pair_id: str
    variant_id: str
    base_id: str
    base_sha: str
    anti_sha: str


def add_base(ws: Workspace, text: str) -> str:
    record = base_prompt_record(text, "builtin:test", None)
    ws.store.put("base_prompt", [record])
    return str(record["id"])


def render(ws: Workspace, prompt_id: str, kind: str, seed: int, image: bytes) -> str:
    sha = ws.images.put(image)
    record = render_record(
        prompt_id,
        kind,
        generator=dict(GENERATOR_FIELDS),
        seed=seed,
        settings=(2, 0.0, 64, 64),
        image_sha256=sha,
        seconds=0.01,
    )
    put_renders(ws.store, [record])
    return sha


def pairing_key_of(seed: int) -> str:
    """The pairing key `render` gives both renders of a pair with this seed."""
    return pairing_key(dict(GENERATOR_FIELDS), seed, (2, 0.0, 64, 64))


def add_variant(ws: Workspace, base_id: str, index: int, text: str, dimensions: Sequence[str]) -> str:
    variant_id = stable_id("variant", base_id, index)
    record = variant_record(
        variant_id, base_id, index, dimensions, "moderate", text, rewriter=LEXICON_REWRITER, taxonomy=TAXONOMY
    )
    ws.store.put("variant", [record])
    return variant_id


def add_pair(
    ws: Workspace,
    base_text: str,
    variant_text: str,
    dimensions: Sequence[str],
    *,
    index: int = 0,
    seed: int = 1,
    base_image: bytes | None = None,
    anti_image: bytes | None = None,
) -> MadePair:
    """A base prompt, one variant of it and both renders (same generator and seed): one complete pair."""
    base_id = add_base(ws, base_text)
    variant_id = add_variant(ws, base_id, index, variant_text, dimensions)
    base_sha = render(ws, base_id, "base", seed, base_image if base_image is not None else png(seed * 1000))
    anti_sha = render(
        ws, variant_id, "variant", seed, anti_image if anti_image is not None else png(seed * 1000 + 1 + index)
    )
    return MadePair(pair_id(variant_id, pairing_key_of(seed)), variant_id, base_id, base_sha, anti_sha)


SUBJECTS = ["a red bicycle", "a bowl of soup", "a lighthouse at dusk", "two cats on a sofa", "a city street"]
DIMENSIONS = [["blurry"], ["noisy", "blurry"], ["underexposed"], ["faded_colour"], ["blurry", "overexposed"]]


def add_sample_pairs(ws: Workspace, n: int = 5) -> list[MadePair]:
    """`n` pairs over the subjects above, two variants per base prompt where n allows."""
    made = []
    for i in range(n):
        subject = SUBJECTS[i % len(SUBJECTS)]
        index = i // len(SUBJECTS)
        dims = DIMENSIONS[i % len(DIMENSIONS)]
        text = f"{subject}, {' and '.join(dims)} version {index}"
        made.append(add_pair(ws, subject, text, dims, index=index, seed=i % len(SUBJECTS) + 1))
    return made
