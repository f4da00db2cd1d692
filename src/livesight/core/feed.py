"""A stream's live feed: each frame the buffer keeps, handed to the live viewers as it arrives.

The buffer is for reading the past; viewers (ingest/viewer.py) want the present. `LiveFeed` sits on
the stream: ingest's `IngestTarget.push_frame` publishes every frame after the buffer assigned it an
index, and each subscriber's callback runs at once, on the event loop, so it must only queue (never
block, never decode). With no subscriber a publish costs one list append.

It also keeps the current GOP (the frames since the newest keyframe; a JPEG frame is a GOP of its
own), so a viewer that joins mid-GOP can start at that keyframe instead of waiting for the next one.
The list holds references to payloads the buffer holds anyway: no copy, and at most one GOP.
"""

from __future__ import annotations

from collections.abc import Callable

from livesight.core.frame import EncodedPayload, FrameInfo, FramePayload

FeedCallback = Callable[[FrameInfo, FramePayload], None]


def payload_codec(payload: FramePayload) -> str:
    """ "vp8" / "h264" for an encoded frame, "jpeg" for anything else (viewers must encode it)."""
    return payload.codec if isinstance(payload, EncodedPayload) else "jpeg"


def starts_gop(payload: FramePayload) -> bool:
    return payload.keyframe if isinstance(payload, EncodedPayload) else True


class LiveFeed:
    def __init__(self) -> None:
        self._subscribers: list[FeedCallback] = []
        self._gop: list[tuple[FrameInfo, FramePayload]] = []
        self.codec: str | None = None
        """The codec of the newest frame ("vp8", "h264", "jpeg"), None before the first."""
        self.width: int | None = None
        self.height: int | None = None

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def current_gop(self) -> list[tuple[FrameInfo, FramePayload]]:
        """The frames since the newest keyframe, oldest first (empty before the first keyframe)."""
        return list(self._gop)

    def publish(self, info: FrameInfo, payload: FramePayload) -> None:
        codec = payload_codec(payload)
        if starts_gop(payload) or codec != self.codec:
            self._gop.clear()
        if starts_gop(payload) or self._gop:
            self._gop.append((info, payload))
        self.codec, self.width, self.height = codec, info.width, info.height
        for callback in list(self._subscribers):
            callback(info, payload)

    def subscribe(self, callback: FeedCallback) -> Callable[[], None]:
        """Call `callback` for every frame published from now on; returns the unsubscribe function."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def close(self) -> None:
        """The stream ended: drop the subscribers and the GOP (its payloads are being freed)."""
        self._subscribers.clear()
        self._gop.clear()
