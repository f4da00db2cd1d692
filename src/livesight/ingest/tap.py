"""The frame tap: the encoded frames of one received video track → the stream's buffer.

aiortc hands over each depayloaded frame (`passthrough.Received`); the tap reads keyframes' sizes from
the bitstream, stamps every frame with its GOP's size and pushes it as an `EncodedPayload`, on the event
loop, with no decode and no copy. Frames before the track's first keyframe decode to nothing, so they are
dropped (counted, and a keyframe is asked for); the frames after a loss the jitter buffer gave up on are
marked `damaged` until the next keyframe (reading them is an error, never wrong pixels).

`last_keyframe_at` and `wants_keyframe` drive the session's keyframe requests (PLI).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiortc.mediastreams import MediaStreamError

from livesight.codec.bitstream import keyframe
from livesight.codec.jpeg import capped_size
from livesight.core.frame import EncodedPayload, IngestFrame, IngestTarget
from livesight.ingest.passthrough import Received

log = logging.getLogger(__name__)
_CLOCK_HZ = 90  # RTP video clock ticks per ms


class FrameTap:
    def __init__(
        self,
        target: IngestTarget,
        session: str,
        *,
        max_side: int,
        on_frame: Callable[[int, int], None] | None = None,
    ) -> None:
        self.target = target
        self.session = session
        self.max_side = max_side
        self.received = 0
        self.pushed = 0
        self.dropped = 0  # before the first keyframe
        self.damaged = 0
        self.keyframes = 0
        self.codec: str | None = None
        self.first_received_at: float | None = None  # monotonic
        self.last_keyframe_at: float | None = None  # monotonic
        self.wants_keyframe = False  # waiting for a first keyframe, or the GOP is damaged
        self._size: tuple[int, int] | None = None  # of the current GOP, as stored (capped)
        self._damaged = False
        self._on_frame = on_frame
        self._wrong_type_reported = False

    async def run(self, recv: Callable[[], Awaitable[object]]) -> None:
        """Read frames from `recv()` (e.g. `track.recv`) until the track ends (aiortc's `MediaStreamError`) or
        the stream does. (aiortc types `recv` as any frame or packet; with the passthrough installed a video
        receiver yields `Received` chunks, and anything else means it is not installed.)"""
        while self.target.active:
            try:
                frame = await recv()
            except MediaStreamError:  # the track ended
                return
            if isinstance(frame, Received):
                self.offer(frame)
            elif not self._wrong_type_reported:
                self._wrong_type_reported = True
                log.error("stream %s: aiortc delivered %r, not an encoded frame", self.target.stream_id, type(frame))
                self.target.report_error("this server's aiortc decodes video itself: frames cannot be kept")

    def offer(self, frame: Received) -> None:
        if not frame.data:
            return  # nothing to keep (the jitter buffer drops padding-only frames already)
        self.received += 1
        now = time.monotonic()
        if self.first_received_at is None:
            self.first_received_at = now
        key = keyframe(frame.codec, frame.data)
        if key is not None:
            self._size = capped_size(key.width, key.height, self.max_side)
            self.codec = frame.codec
            self._damaged = False
            self.wants_keyframe = False
            self.keyframes += 1
            self.last_keyframe_at = now
        elif self._size is None or frame.codec != self.codec:
            self.dropped += 1
            self.wants_keyframe = True
            self.target.frame_dropped()
            return
        elif frame.after_loss and not self._damaged:
            self._damaged = True
            self.wants_keyframe = True
        if self._damaged:
            self.damaged += 1
        width, height = self._size
        self.target.push_frame(
            IngestFrame(
                session=self.session,
                media_ms=frame.timestamp / _CLOCK_HZ,
                width=width,
                height=height,
                payload=EncodedPayload(frame.data, frame.codec, keyframe=key is not None, damaged=self._damaged),
            )
        )
        self.pushed += 1
        if self._on_frame is not None:
            self._on_frame(width, height)
