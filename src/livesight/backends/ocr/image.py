"""Decoding frame bytes with Pillow: a full-size RGB array for OCR, a small copy for statistics.

Statistics always come from the small copy, decoded with Pillow's JPEG draft mode (the decoder scales by
1/2, 1/4 or 1/8 in the DCT, about 1 ms for a 720p frame), so a frame gets the same numbers whether or not
it is also read by OCR, and statistics stay cheap for every frame of a long segment.
Pillow's exceptions are translated here into `ImageUndecodable`, with a message safe to show.
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from livesight.core.errors import ImageUndecodable

RGB = npt.NDArray[np.uint8]

MAX_PIXELS = 40_000_000  # 40 MP: far above any camera frame; refuses decompression bombs before decoding
SMALL_SIDE = 128  # longest side of the copy used for statistics


def _open(data: bytes) -> Image.Image:
    if not data:
        raise ImageUndecodable("the image is empty (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageUndecodable("the bytes are not a recognised image format") from None
    except Image.DecompressionBombError:
        raise ImageUndecodable(f"the image is too large to decode (limit {MAX_PIXELS} pixels)") from None
    except Exception:  # Pillow raises many types on hostile headers
        raise ImageUndecodable("the image header is corrupt") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageUndecodable(f"the image has no pixels ({width}×{height})")
    if width * height > MAX_PIXELS:
        raise ImageUndecodable(f"the image is too large to decode ({width}×{height}, limit {MAX_PIXELS} pixels)")
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    try:
        return image.convert("RGB")
    except Exception:  # truncated or corrupt pixel data surfaces only when decoding
        raise ImageUndecodable("the image data is truncated or corrupt") from None


def image_size(data: bytes) -> tuple[int, int]:
    """Width and height from the header, without decoding the pixels."""
    width, height = _open(data).size
    return width, height


def decode_rgb(data: bytes, max_side: int | None = None) -> RGB:
    """The image as an H×W×3 uint8 RGB array; scaled down (aspect kept) if its longest side exceeds max_side."""
    image = _open(data)
    width, height = image.size
    if max_side is None or max(width, height) <= max_side:
        return np.asarray(_to_rgb(image), dtype=np.uint8)
    scale = max_side / max(width, height)
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    return _scaled(image, target)


def _scaled(image: Image.Image, target: tuple[int, int]) -> RGB:
    try:
        if image.format == "JPEG":
            image.draft("RGB", target)  # decode at 1/2, 1/4 or 1/8 scale, never below target
        rgb = _to_rgb(image)
        if rgb.size != target:
            rgb = rgb.resize(target, Image.Resampling.BOX)
    except ImageUndecodable:
        raise
    except Exception:
        raise ImageUndecodable("the image data is truncated or corrupt") from None
    return np.asarray(rgb, dtype=np.uint8)


def decode_small(data: bytes, max_side: int = SMALL_SIDE) -> tuple[RGB, tuple[int, int]]:
    """A copy whose longest side is at most `max_side` (aspect kept), and the full (width, height)."""
    image = _open(data)
    width, height = image.size
    scale = min(1.0, max_side / max(width, height))
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    return _scaled(image, target), (width, height)


def resize_rgb(rgb: RGB, shape: tuple[int, int]) -> RGB:
    """Resize an RGB array to (rows, cols): used when frames of one segment differ in size."""
    if rgb.shape[:2] == shape:
        return rgb
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    return np.asarray(image.resize((shape[1], shape[0]), Image.Resampling.BOX), dtype=np.uint8)
