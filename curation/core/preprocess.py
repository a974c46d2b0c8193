"""open_clip's image preprocessing, split so the float conversion runs once per batch instead of once per image.

open_clip's eval transform ends in ToTensor then Normalize. Their arithmetic (x / 255, minus the mean, over the
std) is element-wise, so applying it to a stacked uint8 batch gives exactly the tensors the per-image calls give,
and decoding workers hand over uint8 arrays (a quarter of the bytes). Any other transform is used as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision import transforms


@dataclass(frozen=True)
class BatchedPreprocess:
    """`per_image` turns a PIL image into an array (uint8 HWC when `mean` is set, else the final tensor);
    `batch` turns the stacked arrays into model input."""

    per_image: Callable[[Image.Image], Any]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __call__(self, image: Image.Image) -> np.ndarray | torch.Tensor:
        if self.mean is None:
            return self.per_image(image)  # type: ignore[no-any-return]
        return np.asarray(self.per_image(image), dtype=np.uint8)  # the image is RGB: decoded with convert("RGB")

    def batch(self, items: Sequence[np.ndarray | torch.Tensor]) -> torch.Tensor:
        if self.mean is None or self.std is None:
            return torch.stack([torch.as_tensor(i) for i in items])
        pixels = torch.from_numpy(np.stack(items)).permute(0, 3, 1, 2).contiguous().to(torch.float32).div(255)
        mean = torch.as_tensor(self.mean, dtype=torch.float32)[None, :, None, None]
        std = torch.as_tensor(self.std, dtype=torch.float32)[None, :, None, None]
        return pixels.sub_(mean).div_(std)


def batched(preprocess: Any) -> BatchedPreprocess:
    """Split a Compose ending in ToTensor, Normalize; anything else stays one per-image transform."""
    steps = list(getattr(preprocess, "transforms", []))
    if (
        len(steps) >= 2
        and isinstance(steps[-2], transforms.ToTensor)
        and isinstance(steps[-1], transforms.Normalize)
        and not steps[-1].inplace
    ):
        mean, std = steps[-1].mean, steps[-1].std
        return BatchedPreprocess(transforms.Compose(steps[:-2]), tuple(map(float, mean)), tuple(map(float, std)))
    return BatchedPreprocess(preprocess)
