"""The frame tap: decoded frames of one received video track → JPEG workers → the stream's buffer.

aiortc decodes in its own thread per receiver and queues `av.VideoFrame`s for `track.recv()`. The tap
reads them promptly (so that queue never grows), hands each to the shared JPEG pool, and pushes the
results to the buffer in arrival order. At most `max_inflight` frames of one track wait for the pool;
when the pool falls behind, newer frames are dropped and counted (`dropped`), never queued without
bound, so latency stays flat under overload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from fractions import Fraction

from aiortc.mediastreams import MediaStreamError
from av import VideoFrame
from av.frame import Frame

from livesight.core.frame import IngestFrame, IngestTarget, JpegPayload
from livesight.ingest.frames import EncodedFrame, FrameEncoder

log = logging.getLogger(__name__)


def media_ms(frame: Frame) -> float | None:
    """A decoded frame's media time in ms (aiortc: RTP timestamp on the 90 kHz clock)."""
    if frame.pts is None or frame.time_base is None:
        return None
    return float(Fraction(frame.pts) * Fraction(frame.time_base) * 1000)


class FrameTap:
    def __init__(
        self,
        target: IngestTarget,
        encoder: FrameEncoder,
        session: str,
        *,
        max_inflight: int = 4,
        on_frame: Callable[[int, int], None] | None = None,
    ) -> None:
        self.target = target
        self.encoder = encoder
        self.session = session
        self.received = 0
        self.pushed = 0
        self.dropped = 0
        self.failed = 0
        self._on_frame = on_frame
        # (encoding, media ms) per frame; None tells the writer to stop
        self._queue: asyncio.Queue[tuple[asyncio.Future[EncodedFrame], float] | None] = asyncio.Queue(max_inflight)
        self._wall_ms = 0.0

    async def run(self, recv: Callable[[], Awaitable[object]]) -> None:
        """Read frames from `recv()` (e.g. `track.recv`) until the track ends (aiortc's `MediaStreamError`) or the
        stream does; any other exception is a bug and propagates. (aiortc types `recv` as any frame or packet;
        a video receiver yields `VideoFrame`s, and anything else is not a picture to keep.)"""
        writer = asyncio.create_task(self._write())
        try:
            while self.target.active:
                try:
                    frame = await recv()
                except MediaStreamError:  # the track ended
                    break
                if isinstance(frame, VideoFrame):
                    self.offer(frame)
        finally:
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)
            if self._queue.full():  # no room for the stop marker: the writer is stuck behind the pool
                writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    def offer(self, frame: VideoFrame, fallback_media_ms: float | None = None) -> bool:
        """Queue one decoded frame for encoding; False (and counted) when the pool is behind."""
        self.received += 1
        if self._queue.full():
            self.dropped += 1
            self.target.frame_dropped()
            return False
        ms = media_ms(frame)
        if ms is None:
            ms = fallback_media_ms if fallback_media_ms is not None else self.received * 1000 / 30
        self._queue.put_nowait((self.encoder.submit(frame), ms))
        return True

    async def _write(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            future, ms = item
            try:
                encoded: EncodedFrame = await future
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failed += 1
                if self.failed == 1:
                    log.exception("cannot encode a frame of stream %s", self.target.stream_id)
                    self.target.report_error(f"frames cannot be encoded: {exc}")
                continue
            if not self.target.active:
                continue
            self.target.push_frame(
                IngestFrame(
                    session=self.session,
                    media_ms=ms,
                    width=encoded.width,
                    height=encoded.height,
                    payload=JpegPayload(encoded.jpeg),
                )
            )
            self.pushed += 1
            if self._on_frame is not None:
                self._on_frame(encoded.width, encoded.height)
