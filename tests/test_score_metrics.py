"""Fidelity metrics on constructed embeddings whose right answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from curation.score import metrics


def basis(*rows: list[float]) -> np.ndarray:
    return metrics.normalise(np.array(rows, dtype=np.float32))


def test_normalise_gives_unit_rows_and_keeps_zero_rows() -> None:
    out = metrics.normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert out[0] == pytest.approx([0.6, 0.8])
    assert out[1] == pytest.approx([0.0, 0.0])


def test_fidelity_content_kept_and_direction() -> None:
    # variant image halfway between variant text (x) and base text (y); base image on the base text.
    variant_image = basis([1.0, 1.0, 0.0])
    base_image = basis([0.0, 1.0, 0.0])
    variant_text = basis([1.0, 0.0, 0.0])
    base_text = basis([0.0, 1.0, 0.0])
    half = 1 / math.sqrt(2)
    assert metrics.fidelity(variant_image, variant_text)[0] == pytest.approx(half)
    assert metrics.content_kept(variant_image, base_text)[0] == pytest.approx(half)
    # The base image is orthogonal to the variant text, so direction equals fidelity here.
    assert metrics.direction(variant_image, base_image, variant_text)[0] == pytest.approx(half)
    # Swapping the images turns the direction negative.
    assert metrics.direction(base_image, variant_image, variant_text)[0] == pytest.approx(-half)


def test_probe_is_the_shift_toward_the_anti_pole() -> None:
    anti, clean = basis([1.0, 0.0]), basis([0.0, 1.0])
    on_anti, on_clean, between = basis([1.0, 0.0]), basis([0.0, 1.0]), basis([1.0, 1.0])
    scale = 100.0
    # On the anti pole: softmax(100, 0) → P(anti) ≈ 1; on the clean pole the reverse.
    assert metrics.pole_margin(on_anti, anti, clean, scale)[0] == pytest.approx(1.0, abs=1e-6)
    assert metrics.probe(on_anti, on_clean, anti, clean, scale)[0] == pytest.approx(2.0, abs=1e-6)
    assert metrics.probe(on_clean, on_anti, anti, clean, scale)[0] == pytest.approx(-2.0, abs=1e-6)
    assert metrics.probe(between, between, anti, clean, scale)[0] == pytest.approx(0.0, abs=1e-6)
    # A small logit scale gives the exact two-way softmax: tanh(scale * (cos_a - cos_c) / 2).
    image = basis([0.6, 0.8])
    expected = math.tanh(2.0 * (0.6 - 0.8) / 2)
    assert metrics.pole_margin(image, anti, clean, 2.0)[0] == pytest.approx(expected, abs=1e-6)


def test_text_distance_and_near_duplicates_within_a_base_prompt() -> None:
    texts = basis([1.0, 0.0, 0.0], [1.0, 0.01, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0])
    groups = ["a", "a", "a", "b", "c"]
    sibling = metrics.earlier_sibling_cosine(texts, groups)
    assert math.isnan(sibling[0])  # first of its base prompt
    assert sibling[1] == pytest.approx(1.0, abs=1e-3)  # near duplicate of row 0
    assert sibling[2] == pytest.approx(0.01, abs=1e-3)  # highest cosine to rows 0 and 1
    assert math.isnan(sibling[3]) and math.isnan(sibling[4])  # rows 3 and 4 share no base prompt
    distance = metrics.text_distance(texts[:1], texts[2:3])
    assert distance[0] == pytest.approx(1.0)
    assert metrics.text_distance(texts[:1], texts[:1])[0] == pytest.approx(0.0, abs=1e-6)
