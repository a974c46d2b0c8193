"""Turning pipeline output into checked PNG bytes (pure: arrays in, bytes or a failure reason out)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def check_image(image: np.ndarray, *, nsfw_flagged: bool = False) -> str | None:
    """Why an image must not be stored (safety-checker blanked, NaN/inf, or one constant colour), or None."""
    if nsfw_flagged:
        return "the pipeline's safety checker flagged and blanked the image"
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or image.size == 0:
        return f"unexpected image array shape {image.shape}"
    if not np.isfinite(image).all():
        return "the image contains NaN or infinite values (numerical failure)"
    pixels = to_uint8(image)
    if int(pixels.max()) == int(pixels.min()):
        return f"the image is one constant value ({int(pixels.min())}): nothing was generated"
    return None


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Floats in [0, 1] to 8-bit pixels, rounding like diffusers does."""
    return (np.clip(image, 0.0, 1.0) * 255).round().astype(np.uint8)


def encode_png(image: np.ndarray) -> bytes:
    """8-bit PNG bytes with no metadata: the same pixels always give the same bytes."""
    buffer = io.BytesIO()
    pixels = to_uint8(image)
    Image.fromarray(pixels.squeeze(-1) if pixels.shape[2] == 1 else pixels).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()
