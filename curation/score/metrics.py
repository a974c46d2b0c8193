"""Fidelity metrics from L2-normalised CLIP embeddings (pure numpy, one row per pair).

Definitions (see the design notes):
- fidelity      = cos(variant image, variant text)
- content_kept  = cos(variant image, base text)
- direction     = cos(variant image, variant text) − cos(base image, variant text)
- probe[d]      = P(anti | variant image) − P(clean | variant image) minus the same for the base image, where
                  P is the softmax of the CLIP logits (logit scale × cosine) over dimension d's two probe texts.
Text-side checks (no image needed): text_distance = 1 − cos(variant text, base text), and the highest cosine
between a variant text and an earlier variant of the same base prompt (near duplicates).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from curation.core.clip import Matrix, normalise
from curation.core.records import PAIR_METRICS, PROBE_PREFIX, TEXT_METRICS

__all__ = ["PAIR_METRICS", "PROBE_PREFIX", "TEXT_METRICS", "Matrix", "normalise"]

Vector = NDArray[np.float32]


def rowwise_cos(a: Matrix, b: Matrix) -> Vector:
    """Cosine of each row of `a` with the same row of `b` (both already normalised)."""
    return np.einsum("ij,ij->i", a, b).astype(np.float32)


def fidelity(variant_image: Matrix, variant_text: Matrix) -> Vector:
    return rowwise_cos(variant_image, variant_text)


def content_kept(variant_image: Matrix, base_text: Matrix) -> Vector:
    return rowwise_cos(variant_image, base_text)


def direction(variant_image: Matrix, base_image: Matrix, variant_text: Matrix) -> Vector:
    return rowwise_cos(variant_image, variant_text) - rowwise_cos(base_image, variant_text)


def pole_margin(image: Matrix, anti: Matrix, clean: Matrix, logit_scale: float) -> Vector:
    """P(anti) − P(clean) per image: a two-way softmax over the CLIP logits of the probe texts."""
    logits = logit_scale * np.stack([rowwise_cos(image, anti), rowwise_cos(image, clean)], axis=1)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    return (p[:, 0] - p[:, 1]).astype(np.float32)


def probe(variant_image: Matrix, base_image: Matrix, anti: Matrix, clean: Matrix, logit_scale: float) -> Vector:
    """How much further toward the anti pole of a dimension the variant image sits than its base image."""
    return pole_margin(variant_image, anti, clean, logit_scale) - pole_margin(base_image, anti, clean, logit_scale)


def text_distance(variant_text: Matrix, base_text: Matrix) -> Vector:
    """How far the rewrite moved from the base prompt: 1 − cosine of the two text embeddings."""
    return (1.0 - rowwise_cos(variant_text, base_text)).astype(np.float32)


def earlier_sibling_cosine(texts: Matrix, groups: Sequence[str]) -> NDArray[np.float64]:
    """For each row, the highest cosine to an earlier row of the same group (NaN for the first of a group).

    Rows are variants in their planned order; a group is their base prompt. A value above the near-duplicate
    threshold marks the later variant as a near duplicate of an earlier one.
    """
    out = np.full(len(groups), np.nan)
    members: dict[str, list[int]] = {}
    for i, group in enumerate(groups):
        members.setdefault(group, []).append(i)
    for rows in members.values():
        if len(rows) < 2:
            continue
        sub = texts[rows]
        sims = sub @ sub.T
        for k in range(1, len(rows)):
            out[rows[k]] = float(sims[k, :k].max())
    return out
