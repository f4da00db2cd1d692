"""`IngestTarget` for one stream: ingest's only handle on a stream and its buffer."""

from __future__ import annotations

import logging
from collections.abc import Callable

from livesight.core.clock import Clock
from livesight.core.feed import LiveFeed
from livesight.core.frame import FrameInfo, IngestFrame
from livesight.core.metrics import Recorder
from livesight.streams.stream import Stream

log = logging.getLogger(__name__)


class StreamTarget:
    def __init__(
        self, stream: Stream, push: Callable[[Stream, IngestFrame], FrameInfo], clock: Clock, recorder: Recorder
    ) -> None:
        self._stream = stream
        self._push = push
        self._clock = clock
        self._recorder = recorder

    @property
    def stream_id(self) -> str:
        return self._stream.id

    @property
    def active(self) -> bool:
        return self._stream.active

    @property
    def feed(self) -> LiveFeed:
        return self._stream.feed

    def push_frame(self, frame: IngestFrame) -> None:
        self._recorder.frame_received(self._stream.publisher.codec)
        if self._stream.active:
            info = self._push(self._stream, frame)
            self._recorder.frame_kept(self._stream.publisher.codec)
            self._stream.feed.publish(info, frame.payload)

    def frame_dropped(self) -> None:
        self._recorder.frame_dropped(self._stream.publisher.codec)

    def publisher_connected(self, identity: str, *, codec: str | None = None) -> None:
        pub = self._stream.publisher
        pub.connected, pub.identity, pub.codec = True, identity, codec
        pub.connected_at_ms = self._clock.now_ms()

    def publisher_disconnected(self, reason: str | None = None) -> None:
        self._stream.publisher.connected = False
        if reason:
            self.report_error(reason)

    def report_error(self, message: str | None) -> None:
        pub = self._stream.publisher
        pub.last_error = message
        pub.last_error_at_ms = self._clock.now_ms() if message else None
        if message:
            log.warning("stream %s: %s", self._stream.id, message)
