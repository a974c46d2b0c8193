"""Images as the judge's request carries them: scaled down to `max_side`, encoded once, as data URLs."""

from __future__ import annotations

import asyncio
import base64
import io
from collections import OrderedDict
from collections.abc import Callable

from PIL import Image

JPEG_QUALITY = 90
# zlib level of a re-encoded PNG: the data URL is sent once, not kept, and level 1 encodes a 768² render 1.2-5x
# faster than Pillow's default 6 for 5-20% more bytes (the pixels are the same).
PNG_COMPRESS_LEVEL = 1


def data_url(png: bytes, max_side: int, image_format: str) -> str:
    """`png` as a `data:` URL: scaled down (never up) so its longest side is at most `max_side`, as PNG or JPEG.
    A PNG that already fits travels as its original bytes."""
    with Image.open(io.BytesIO(png)) as image:
        fits = max(image.size) <= max_side
        if fits and image_format == "png":
            data = png
        else:
            picture = image.convert("RGB")
            if not fits:
                scale = max_side / max(image.size)
                size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
                picture = picture.resize(size, Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            if image_format == "jpeg":
                picture.save(buffer, format="JPEG", quality=JPEG_QUALITY)
            else:
                picture.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
            data = buffer.getvalue()
    mime = "image/jpeg" if image_format == "jpeg" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


class PreparedImages:
    """Data URLs by image sha256 for one event loop, each prepared once (in a worker thread) while it is among the
    `capacity` most recent: both orders of a pair, and a base image shared by several variants, reuse it."""

    def __init__(self, read: Callable[[str], bytes], max_side: int, image_format: str, capacity: int = 256) -> None:
        self._read, self.max_side, self.image_format, self.capacity = read, max_side, image_format, capacity
        self._urls: OrderedDict[str, asyncio.Task[str]] = OrderedDict()
        self.prepared = 0

    def _prepare(self, sha256: str) -> str:
        return data_url(self._read(sha256), self.max_side, self.image_format)

    async def url(self, sha256: str) -> str:
        task = self._urls.get(sha256)
        if task is None:
            task = asyncio.ensure_future(asyncio.to_thread(self._prepare, sha256))
            self.prepared += 1
            self._urls[sha256] = task
            if len(self._urls) > self.capacity:
                self._urls.popitem(last=False)
        else:
            self._urls.move_to_end(sha256)
        return await task
