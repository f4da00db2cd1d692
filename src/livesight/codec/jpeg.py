"""Decoded video frame → capped resolution → JPEG, in a bounded worker pool off the event loop.

The JPEG is encoded straight from the YUV 4:2:0 planes with libjpeg-turbo (`simplejpeg`), so no RGB
conversion happens. Video is usually limited range (16-235) while JFIF is full range, so one swscale
pass does the range conversion together with any downscale (about 1 ms for 720p); skipping it would
give washed-out JPEGs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from dataclasses import dataclass

import av
import numpy as np
import simplejpeg
from av.video.reformatter import VideoReformatter
from numpy.typing import NDArray

from livesight.core.metrics import NULL_RECORDER, Recorder

_JPEG_RANGE = 2  # AVCOL_RANGE_JPEG (full range)
_local = threading.local()  # one reformatter (cached swscale context) per worker thread


def _reformatter() -> VideoReformatter:
    reformatter: VideoReformatter | None = getattr(_local, "reformatter", None)
    if reformatter is None:
        reformatter = _local.reformatter = VideoReformatter()
    return reformatter


@dataclass(frozen=True, slots=True)
class JpegImage:
    jpeg: bytes
    width: int
    height: int


def capped_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size after capping the longest side at `max_side`, keeping the aspect ratio; even numbers
    (4:2:0 chroma needs them) and at least 2x2."""
    scale = min(1.0, max_side / max(width, height, 1))
    w = max(2, round(width * scale) // 2 * 2)
    h = max(2, round(height * scale) // 2 * 2)
    return w, h


def _plane(plane: av.video.plane.VideoPlane) -> NDArray[np.uint8]:
    rows = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
    return np.ascontiguousarray(rows[:, : plane.width])


def encode_jpeg(frame: av.VideoFrame, *, max_side: int, quality: int) -> JpegImage:
    """Resize (if needed), convert to full-range I420, encode. CPU-bound: call from a worker thread."""
    width, height = capped_size(frame.width, frame.height, max_side)
    is_i420 = frame.format.name in ("yuv420p", "yuvj420p")
    full_range = frame.format.name == "yuvj420p" or frame.color_range == _JPEG_RANGE
    if (width, height) != (frame.width, frame.height) or not is_i420 or not full_range:
        frame = _reformatter().reformat(
            frame, width=width, height=height, format="yuv420p", dst_color_range=_JPEG_RANGE
        )
    y, u, v = (_plane(p) for p in frame.planes[:3])
    data = simplejpeg.encode_jpeg_yuv_planes(y, u, v, quality=quality)
    return JpegImage(jpeg=bytes(data), width=width, height=height)


class FrameEncoder:
    """A bounded pool of JPEG workers shared by every stream of the process."""

    def __init__(self, workers: int, *, max_side: int, quality: int, recorder: Recorder = NULL_RECORDER) -> None:
        self.max_side = max_side
        self.recorder = recorder
        self.quality = quality
        self.workers = workers
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="livesight-jpeg")

    def submit(self, frame: av.VideoFrame) -> asyncio.Future[JpegImage]:
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._pool, self.encode, frame)

    def encode(self, frame: av.VideoFrame) -> JpegImage:
        """Encode on the calling thread (a pulled source's own thread, or a pool worker), timed."""
        started = time.perf_counter()
        encoded = encode_jpeg(frame, max_side=self.max_side, quality=self.quality)
        self.recorder.encode_seconds(time.perf_counter() - started)
        return encoded

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
