"""Frames and the hand-off between ingest and the buffer.

A frame in the buffer is a `FrameInfo` (who and when) plus a `FramePayload` (the pixels, in whatever
form the store keeps them). The payload interface does not assume one JPEG per frame: a store that
keeps the encoded bitstream and decodes on demand can implement `FramePayload` too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from livesight.core.feed import LiveFeed


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """One retained frame. `timestamp_ms` is stream-clock time (ms since the stream's first frame)."""

    index: int
    timestamp_ms: int
    arrived_at_ms: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class BufferStats:
    """What a stream's buffer holds, as plain values: the window facts of GET /streams/{id}.

    `stream_time_ms` is the newest stream time handed out; `recent_fps` is 0 for a stalled or ended
    stream. An ended stream keeps the values it had when it ended (its frames are freed)."""

    stream_time_ms: int = 0
    first_frame_at_ms: int | None = None
    last_frame_at_ms: int | None = None
    last_frame_index: int | None = None
    first_available_frame_at_ms: int | None = None
    first_available_frame_index: int | None = None
    recent_fps: float = 0.0
    retained_frame_count: int = 0
    evicted_frame_count: int = 0
    retained_bytes: int = 0
    keyframe_interval_ms: int | None = None  # mean of the last GOPs (encoded frames only)
    gaps: int = 0  # times the stream went on after its node was lost (its frames then are gone: evicted)


class FramePayload(Protocol):
    """The pixels of one frame, in the form the store keeps them. Read them with the buffer's reader
    (`FrameWindow.jpegs`): a JPEG is returned as stored, an encoded frame is decoded on demand."""

    @property
    def nbytes(self) -> int:
        """Memory this payload holds, for the buffer's budgets."""
        ...


@dataclass(frozen=True, slots=True)
class JpegPayload:
    """A frame stored as one JPEG (pulled sources in codecs the store does not keep encoded)."""

    data: bytes

    @property
    def nbytes(self) -> int:
        return len(self.data)


@dataclass(frozen=True, slots=True)
class EncodedPayload:
    """A frame stored as its depayloaded bitstream (VP8, or H264 Annex-B), decoded only when read.

    A keyframe starts a GOP: the frames after it, up to the next keyframe, decode only from it. `damaged`
    marks a frame that follows lost data in its GOP (the jitter buffer gave up on packets, or a frame
    never arrived): it and the rest of its GOP cannot be decoded to the right pixels, and reading them
    is an error (`frame_undecodable`), never a wrong picture."""

    data: bytes
    codec: str  # "vp8" | "h264"
    keyframe: bool
    damaged: bool = False

    @property
    def nbytes(self) -> int:
        return len(self.data)


@dataclass(frozen=True, slots=True)
class IngestFrame:
    """What ingest hands to the buffer.

    `media_ms` is the frame's media timestamp in ms on the publisher's clock; it only has to be
    consistent within one `session` (one publication; a reconnecting publisher starts a new session).
    The buffer turns it into the monotonic stream clock and assigns the lifetime index.
    """

    session: str
    media_ms: float
    width: int
    height: int
    payload: FramePayload


class IngestTarget(Protocol):
    """One active stream, as ingest sees it."""

    @property
    def stream_id(self) -> str: ...

    @property
    def active(self) -> bool: ...

    @property
    def feed(self) -> LiveFeed:
        """The stream's frames as they are buffered, for live viewers (core/feed.py)."""
        ...

    def push_frame(self, frame: IngestFrame) -> None:
        """Append a frame (assigns its lifetime index and stream time). Call on the event loop."""
        ...

    def frame_dropped(self) -> None:
        """Count a received frame that ingest dropped before the buffer (the encoder pool fell behind)."""
        ...

    def publisher_connected(self, identity: str, *, codec: str | None = None) -> None: ...

    def publisher_disconnected(self, reason: str | None = None) -> None: ...

    def report_error(self, message: str | None) -> None:
        """Set (or clear, with None) the stream's `last_error`, visible in GET /streams/{id}."""
        ...


StreamEndHook = Callable[[str], None]
"""Called synchronously with a stream_id when that stream ends (deleted, expired, shutdown).
Must not block: schedule any async work (e.g. disconnecting a publisher) as a task."""


class IngestDirectory(Protocol):
    """What ingest may know of the streams (`streams.directory.StreamDirectory` extends it)."""

    def ingest_target(self, stream_id: str) -> IngestTarget | None:
        """The active stream with this id, or None (unknown, ended or not a UUID)."""
        ...

    def add_end_hook(self, hook: StreamEndHook) -> None: ...
