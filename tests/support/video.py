"""Encoded test-pattern video for pulled-source tests: a file on disk, or packets in any container."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np

from livesight.ingest.pattern import TestPattern


def encode_pattern(container: Any, codec: str, frames: int, fps: int, size: tuple[int, int], **options: Any) -> None:
    """Encode `frames` test-pattern frames (frame number in the pixels) into an open output container."""
    width, height = size
    pattern = TestPattern(width, height)
    bit_rate = options.pop("bit_rate", None)
    stream = container.add_stream(codec, rate=fps, options=options or None)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    if bit_rate:
        stream.bit_rate = bit_rate
    for n in range(frames):
        data = np.frombuffer(pattern.render(n), np.uint8).reshape(height * 3 // 2, width)
        for packet in stream.encode(av.VideoFrame.from_ndarray(data, format="yuv420p")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def write_video(path: Path, frames: int = 20, fps: int = 10, size: tuple[int, int] = (320, 240)) -> None:
    """An MPEG-4 file of the test pattern."""
    with av.open(str(path), "w") as container:
        encode_pattern(container, "mpeg4", frames, fps, size, bit_rate=2_000_000)
