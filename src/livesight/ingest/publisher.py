"""Publish video into a livesight stream with the official `livekit` Python SDK.

The settings here are the ones that make the embedded endpoint receive full-quality frames (see
docs/ingest.md): a codec aiortc decodes (VP8 or H264, pinned: the SDK would otherwise pick any),
simulcast off (one full-resolution layer), MAINTAIN_RESOLUTION (never downscale under congestion).

Sources: the test pattern, a video file (optionally looped), a webcam (V4L2 device), or an
RTSP/HTTP URL, the last three read with PyAV.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from livekit import rtc

from livesight.codec.jpeg import capped_size
from livesight.core.errors import PublishError
from livesight.ingest.pattern import TestPattern

CODECS = {"vp8": rtc.VideoCodec.VP8, "h264": rtc.VideoCodec.H264}


@dataclass(frozen=True, slots=True)
class Frame:
    """One I420 frame and the wall-clock time (s) it was captured."""

    width: int
    height: int
    i420: bytes
    captured_at: float


class Source:
    """Something that yields I420 frames at its own pace."""

    width: int
    height: int
    fps: float
    description: str

    def frames(self) -> AsyncIterator[Frame]:
        raise NotImplementedError


class RenderedSource(Source):
    """A source that draws frame `n` itself, paced at `fps` by the wall clock."""

    render_off_loop = False  # True when render() is slow enough to belong in a thread

    def render(self, n: int, now: float) -> bytes:
        """Frame `n`, captured at wall time `now`, as I420 bytes."""
        raise NotImplementedError

    async def frames(self) -> AsyncIterator[Frame]:
        start = time.monotonic()
        n = 0
        while True:
            delay = start + n / self.fps - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1.0:  # fell far behind (suspended): skip ahead instead of bursting
                n = int((time.monotonic() - start) * self.fps)
            now = time.time()
            i420 = await asyncio.to_thread(self.render, n, now) if self.render_off_loop else self.render(n, now)
            yield Frame(self.width, self.height, i420, now)
            n += 1


class PatternSource(RenderedSource):
    def __init__(self, width: int = 1280, height: int = 720, fps: float = 30.0, label: str | None = None) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.pattern = TestPattern(width, height, label or "LIVESIGHT TEST PATTERN")
        self.description = f"test pattern {width}x{height}@{fps:g}"

    def render(self, n: int, now: float) -> bytes:
        return self.pattern.render(n, now)


class AVSource(Source):
    """A file, webcam or network stream read with PyAV (decoding runs in a thread)."""

    def __init__(self, location: str, *, loop: bool = False, max_side: int = 1280) -> None:
        self.location = location
        self.loop = loop
        self.max_side = max_side
        self.is_file = Path(location).is_file()
        self.is_device = location.startswith("/dev/video")
        container = self._open()
        try:
            stream = container.streams.video[0] if container.streams.video else None
            if stream is None:
                raise PublishError(f"{location} has no video stream")
            self.width, self.height = capped_size(stream.codec_context.width, stream.codec_context.height, max_side)
            self.fps = float(stream.average_rate or 30)
        finally:
            container.close()
        kind = "webcam" if self.is_device else "file" if self.is_file else "stream"
        self.description = f"{kind} {location} ({self.width}x{self.height}@{self.fps:.3g})"

    def _open(self) -> av.container.InputContainer:
        try:
            if self.is_device:
                return av.open(self.location, format="v4l2")
            options = {"rtsp_transport": "tcp"} if self.location.startswith("rtsp") else {}
            return av.open(self.location, options=options, timeout=(10.0, 10.0))
        except av.error.FFmpegError as exc:
            raise PublishError(f"cannot open {self.location}: {exc}") from None

    async def frames(self) -> AsyncIterator[Frame]:
        queue: asyncio.Queue[Frame | Exception | None] = asyncio.Queue(maxsize=4)
        loop = asyncio.get_running_loop()
        stop = False

        def reader() -> None:
            try:
                while not stop:
                    self._read_once(
                        lambda f: asyncio.run_coroutine_threadsafe(queue.put(f), loop).result(), lambda: stop
                    )
                    if not (self.loop and self.is_file):
                        break
                asyncio.run_coroutine_threadsafe(queue.put(None), loop).result()
            except Exception as exc:
                with contextlib.suppress(Exception):
                    asyncio.run_coroutine_threadsafe(queue.put(exc), loop).result()

        task = loop.run_in_executor(None, reader)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, Exception):
                    raise PublishError(f"reading {self.location} failed: {item}")
                yield item
        finally:
            stop = True
            with contextlib.suppress(asyncio.QueueEmpty):
                while True:
                    queue.get_nowait()
            task.cancel()

    def _read_once(self, put: Callable[[Frame], object], stopped: Callable[[], bool]) -> None:
        with self._open() as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            start, first = time.monotonic(), None
            for frame in container.decode(stream):
                if stopped():
                    return
                if self.is_file and frame.pts is not None and frame.time_base is not None:
                    t = float(frame.pts * frame.time_base)
                    first = t if first is None else first
                    delay = start + (t - first) - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                image = frame.reformat(width=self.width, height=self.height, format="yuv420p")
                put(Frame(self.width, self.height, image.to_ndarray().tobytes(), time.time()))


@dataclass
class PublishStats:
    frames_sent: int = 0
    started_at: float = field(default_factory=time.monotonic)
    recent: list[float] = field(default_factory=list)
    capture_times: dict[int, float] | None = None

    def record(self, n: int, captured_at: float) -> None:
        self.frames_sent += 1
        now = time.monotonic()
        self.recent.append(now)
        while self.recent and self.recent[0] < now - 2.0:
            self.recent.pop(0)
        if self.capture_times is not None:
            self.capture_times[n] = captured_at

    @property
    def fps(self) -> float:
        if len(self.recent) < 2:
            return 0.0
        span = self.recent[-1] - self.recent[0]
        return (len(self.recent) - 1) / span if span > 0 else 0.0


def publish_options(codec: str, fps: float, max_bitrate: int | None = None) -> rtc.TrackPublishOptions:
    if codec.lower() not in CODECS:
        raise PublishError(f"codec {codec!r} is not decodable by livesight; use vp8 or h264")
    options = rtc.TrackPublishOptions(
        source=rtc.TrackSource.SOURCE_CAMERA,
        simulcast=False,
        video_codec=CODECS[codec.lower()],
        degradation_preference=rtc.DegradationPreference.MAINTAIN_RESOLUTION.value,
    )
    if max_bitrate:
        options.video_encoding.max_bitrate = max_bitrate
        options.video_encoding.max_framerate = fps
    return options


async def publish(
    url: str,
    token: str,
    source: Source,
    *,
    codec: str = "vp8",
    max_bitrate: int | None = None,
    stats: PublishStats | None = None,
    stop: asyncio.Event | None = None,
    connect_timeout: float = 20.0,
) -> PublishStats:
    """Connect, publish `source` until it ends or `stop` is set, then leave. Raises PublishError."""
    stats = stats or PublishStats()
    stop = stop or asyncio.Event()
    room = rtc.Room()
    try:
        await asyncio.wait_for(room.connect(url, token, rtc.RoomOptions(auto_subscribe=False)), connect_timeout)
    except (rtc.ConnectError, TimeoutError) as exc:
        raise PublishError(f"cannot connect to {url}: {exc}") from None
    video = rtc.VideoSource(source.width, source.height)
    track = rtc.LocalVideoTrack.create_video_track("camera", video)
    try:
        await room.local_participant.publish_track(track, publish_options(codec, source.fps, max_bitrate))
        n = 0
        frames = source.frames()
        try:
            async for frame in frames:
                if stop.is_set() or room.connection_state == rtc.ConnectionState.CONN_DISCONNECTED:
                    break
                video.capture_frame(
                    rtc.VideoFrame(frame.width, frame.height, rtc.VideoBufferType.I420, frame.i420),
                    timestamp_us=int(frame.captured_at * 1_000_000),
                )
                stats.record(n, frame.captured_at)
                n += 1
        finally:
            await frames.aclose()  # type: ignore[attr-defined]
        if room.connection_state == rtc.ConnectionState.CONN_DISCONNECTED and not stop.is_set():
            raise PublishError("the server disconnected the publisher (stream ended or refused)")
    finally:
        with contextlib.suppress(Exception):
            await room.disconnect()
        with contextlib.suppress(Exception):
            await video.aclose()
    return stats


def i420_luma(data: bytes, width: int, height: int) -> np.ndarray[tuple[int, int], np.dtype[np.uint8]]:
    """The Y plane of an I420 buffer (for tests and tools that read the pattern back)."""
    return np.frombuffer(data, np.uint8, count=width * height).reshape(height, width)
