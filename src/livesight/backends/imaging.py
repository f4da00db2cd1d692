"""Pixel work for backends and thumbnails: decoding frame bytes, JPEG resize, H.264 mp4 encode. Blocking CPU:
run in an executor.

This module is the only one in `backends` that imports PyAV, simplejpeg and Pillow; their exceptions become
`ImageUndecodable` here, with a message safe to show. `decode_rgb` is the one decoder of frame bytes to RGB.

Statistics (livesight/ocr) always come from the small copy, decoded with Pillow's JPEG draft mode (the decoder
scales by 1/2, 1/4 or 1/8 in the DCT), so a frame gets the same numbers whether or not it is also read by OCR,
and statistics stay cheap for every frame of a long segment.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt
import simplejpeg
from PIL import Image, UnidentifiedImageError

from livesight.core.errors import ImageUndecodable
from livesight.core.media import MediaItem

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


def jpeg_size(jpeg: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG header."""
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(jpeg)
    except (ValueError, RuntimeError) as exc:
        raise ImageUndecodable(f"not a readable JPEG image: {exc}") from None
    return int(width), int(height)


def resize_jpeg(jpeg: bytes, max_side: int, quality: int = 85) -> bytes:
    """The JPEG scaled down so its longer side is at most `max_side` (unchanged if already smaller)."""
    width, height = jpeg_size(jpeg)
    if max(width, height) <= max_side:
        return jpeg
    scale = max_side / max(width, height)
    new_w, new_h = max(2, round(width * scale)) & ~1, max(2, round(height * scale)) & ~1
    frame = av.VideoFrame.from_ndarray(decode_rgb(jpeg), format="rgb24")
    small = frame.reformat(width=new_w, height=new_h, format="rgb24", interpolation="AREA").to_ndarray()
    return bytes(simplejpeg.encode_jpeg(np.ascontiguousarray(small), quality=quality, colorspace="RGB"))


def encode_mp4(item: MediaItem, crf: int = 23) -> bytes:
    """The segment's frames as an H.264 mp4 whose timestamps are the frames' stream times (VFR)."""
    first = item.frames[0]
    width, height = max(2, first.width & ~1), max(2, first.height & ~1)
    start = first.timestamp_ms or 0
    out = io.BytesIO()
    try:
        with av.open(out, mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=max(1, round(item.max_fps or 1)))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.time_base = Fraction(1, 1000)
            stream.codec_context.time_base = Fraction(1, 1000)
            stream.options = {"crf": str(crf), "preset": "veryfast"}
            last_pts = -1
            for media in item.frames:
                frame = av.VideoFrame.from_ndarray(decode_rgb(media.jpeg), format="rgb24")
                frame = frame.reformat(width=width, height=height, format="yuv420p")
                pts = max((media.timestamp_ms or 0) - start, last_pts + 1)
                frame.pts, frame.time_base, last_pts = pts, Fraction(1, 1000), pts
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
    except av.FFmpegError as exc:
        raise ImageUndecodable(f"cannot encode the segment as mp4: {exc}") from None
    return out.getvalue()
