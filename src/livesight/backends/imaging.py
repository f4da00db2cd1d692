"""Pixel work for backends and thumbnails: JPEG resize, H.264 mp4 encode. Blocking CPU: run in an executor.

This module is the only one in `backends` that imports PyAV and simplejpeg; their exceptions become
`ImageUndecodable` here.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
import simplejpeg

from livesight.core.errors import ImageUndecodable
from livesight.core.media import MediaItem


def jpeg_size(jpeg: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG header."""
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(jpeg)
    except (ValueError, RuntimeError) as exc:
        raise ImageUndecodable(f"not a readable JPEG image: {exc}") from None
    return int(width), int(height)


def decode_rgb(jpeg: bytes) -> np.ndarray:
    try:
        return np.asarray(simplejpeg.decode_jpeg(jpeg, colorspace="RGB"))
    except (ValueError, RuntimeError) as exc:
        raise ImageUndecodable(f"not a readable JPEG image: {exc}") from None


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
