"""Frames that show known text, put straight into a stream's buffer (no ingest needed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import simplejpeg
from PIL import Image, ImageDraw, ImageFont

from livesight.core.frame import IngestFrame, JpegPayload


def text_jpeg(text: str, width: int = 640, height: int = 360, shade: int = 40) -> bytes:
    """A JPEG with `text` written large, black on a light background (OCR reads it)."""
    image = Image.new("RGB", (width, height), (235, 235, 225 - shade % 60))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(16, height // 6))
    draw.text((width // 12, height // 3), text, fill=(10, 10, 10), font=font)
    return bytes(simplejpeg.encode_jpeg(np.asarray(image), quality=90, colorspace="RGB"))


def push_frames(
    server: Any,
    stream_id: str,
    stamps_ms: Sequence[int],
    *,
    label: str = "FRAME",
    jpeg: Callable[[int], bytes] | None = None,
) -> None:
    """Append one frame per stream time; frame i shows f"{label} {i}" (or `jpeg(i)`). The server's
    FakeClock advances with the media times, so wall-clock arrival follows the stream clock."""
    registry = server.components.registry
    clock = server.clock
    make = jpeg or (lambda i: text_jpeg(f"{label} {i}"))
    payloads = [make(i) for i in range(len(stamps_ms))]

    def push_all() -> None:
        target = registry.ingest_target(stream_id)
        assert target is not None, "stream is not active"
        previous = int(stamps_ms[0])
        for ms, data in zip(stamps_ms, payloads, strict=True):
            clock.advance(int(ms) - previous)
            previous = int(ms)
            target.push_frame(IngestFrame("test", float(ms), 640, 360, JpegPayload(data)))

    server.call(push_all)
