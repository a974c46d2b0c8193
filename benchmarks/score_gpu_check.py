"""GPU check for scoring: ViT-L/14 (random weights, the real architecture) through widespec's encode path.

    python benchmarks/score_gpu_check.py            # on a GPU machine
    python benchmarks/score_gpu_check.py --smoke    # a tiny model on whatever device there is, in seconds

`clip_gpu_check()` measures two figures with widespec's own code (`ClipEncoder`, `image_loader`):
- encode: preprocessed batches already in memory → normalised embeddings (the model alone, autocast fp16);
- end to end: PNG files in an image store → DataLoader workers decode and preprocess → encode.
The public reference for ViT-L/14 is about 312 images/s per A100 (clip-retrieval); the goal is 2× that on an H100.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REFERENCE_A100_IMAGES_PER_S = 312.0


def _random_png(seed: int, size: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size // 8, size // 8, 3), dtype=np.uint8)
    image = Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _encoder(model_name: str, smoke: bool) -> Any:
    import open_clip
    import torch

    from curation.core.clip import TINY_CLIP_CONFIG, ClipEncoder, resolve_device

    device = resolve_device("auto")
    if smoke:
        from open_clip.model import CLIP

        model: Any = CLIP(**TINY_CLIP_CONFIG)
        preprocess = open_clip.image_transform(TINY_CLIP_CONFIG["vision_cfg"]["image_size"], is_train=False)
        name = "tiny-clip"
    else:
        model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=None)
        name = model_name
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    torch.manual_seed(0)
    return ClipEncoder(f"{name}/random", model, preprocess, tokenizer, device, autocast=True)


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def clip_gpu_check(
    *,
    model_name: str = "ViT-L-14",
    images: int = 4096,
    batch_size: int = 256,
    image_size: int = 256,
    workers: int | None = None,
    smoke: bool = False,
) -> dict[str, Any]:
    """Images per second of widespec's CLIP encode path; returns the figures as a dict (and prints nothing)."""
    import torch

    from curation.core.images import ImageStore
    from curation.score.stage import image_loader

    if smoke:
        images, batch_size, image_size = min(images, 64), min(batch_size, 16), 64
    workers = workers if workers is not None else max(1, min(16, (os.cpu_count() or 2) - 1))
    encoder = _encoder(model_name, smoke)
    device = encoder.device
    side = int(encoder.preprocess.transforms[1].size[0]) if hasattr(encoder.preprocess, "transforms") else 224

    # 1. The model alone: preprocessed batches in (pinned) memory.
    pixels = torch.randn(batch_size, 3, side, side)
    if device.type == "cuda":
        pixels = pixels.pin_memory()
    for _ in range(2):
        encoder.encode_images(pixels)  # warm-up (kernels, autocast caches)
    _sync(device)
    rounds = max(1, images // batch_size)
    started = time.perf_counter()
    for _ in range(rounds):
        encoder.encode_images(pixels)
    _sync(device)
    encode_rate = rounds * batch_size / (time.perf_counter() - started)

    # 2. End to end: PNG files → DataLoader workers → encoder.
    with tempfile.TemporaryDirectory(prefix="widespec-gpu-check-") as tmp:
        store = ImageStore(Path(tmp) / "images")
        shas = [store.put(_random_png(i, image_size)) for i in range(images)]
        items = [(sha, store.path_for(sha)) for sha in shas]
        warm = image_loader(items[: batch_size * 2], encoder, batch_size, workers)
        for _, batch, _ in warm:
            if batch is not None:
                encoder.encode_images(batch)
        _sync(device)
        started = time.perf_counter()
        done = 0
        for got, batch, _ in image_loader(items, encoder, batch_size, workers):
            if batch is not None:
                encoder.encode_images(batch)
            done += len(got)
        _sync(device)
        end_to_end_rate = done / (time.perf_counter() - started)

    return {
        "model": encoder.scorer_id,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
        "images": images,
        "batch_size": batch_size,
        "image_size": image_size,
        "workers": workers,
        "encode_images_per_s": round(encode_rate, 1),
        "end_to_end_images_per_s": round(end_to_end_rate, 1),
        "reference_a100_images_per_s": REFERENCE_A100_IMAGES_PER_S,
        "end_to_end_vs_reference": round(end_to_end_rate / REFERENCE_A100_IMAGES_PER_S, 2),
        "goal_vs_reference": 2.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="Tiny model, 64 images: checks the script runs.")
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    result = clip_gpu_check(
        images=args.images,
        batch_size=args.batch_size,
        image_size=args.image_size,
        workers=args.workers,
        smoke=args.smoke,
    )
    print(json.dumps(result, indent=2))
    print(
        f"{result['model']} on {result['device']}: encode {result['encode_images_per_s']} images/s, "
        f"end to end {result['end_to_end_images_per_s']} images/s = {result['end_to_end_vs_reference']}x the "
        f"A100 reference ({REFERENCE_A100_IMAGES_PER_S:.0f} images/s; goal 2x)"
    )


if __name__ == "__main__":
    main()
