"""A stream as the stream layer holds it: its lease, its state, its publisher, its end.

Callers get `Stream`s from a `StreamDirectory` and only read them; the directory changes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from livesight.core.errors import StreamNotFound, StreamUnauthorized
from livesight.core.feed import LiveFeed
from livesight.core.ids import parse_stream_id
from livesight.core.records import EndReason, SourceSpec, StreamFacts, StreamState

__all__ = ["EndReason", "Publisher", "SourceSpec", "Stream", "StreamFacts", "StreamState", "list_key"]


@dataclass(slots=True)
class Publisher:
    connected: bool = False
    identity: str | None = None
    codec: str | None = None
    connected_at_ms: int | None = None
    last_error: str | None = None
    last_error_at_ms: int | None = None


@dataclass(slots=True)
class Stream:
    id: str
    owner: str
    created_at_ms: int
    ttl_seconds: int
    expires_at_ms: int
    source: SourceSpec | None = None
    state: StreamState = "active"
    ended_at_ms: int | None = None
    end_reason: EndReason | None = None
    publisher: Publisher = field(default_factory=Publisher)
    width: int | None = None
    height: int | None = None
    final: StreamFacts | None = None  # an ended stream's facts when it ended (its frames are freed)
    feed: LiveFeed = field(default_factory=LiveFeed)  # its frames as they arrive, for live viewers

    @property
    def active(self) -> bool:
        return self.state == "active"


def list_key(stream: Stream) -> tuple[int, int, str]:
    """Listing order: active first (newest created first), then tombstones (newest ended first)."""
    if stream.active:
        return (0, -stream.created_at_ms, stream.id)
    return (1, -(stream.ended_at_ms or 0), stream.id)


def find_stream(streams: Mapping[str, Stream], stream_id: str, owner: str) -> Stream:
    """The stream with this id among `streams` (keyed by canonical id), active or tombstone, if `owner`
    owns it. Raises StreamNotFound (unknown, or not a UUID) or StreamUnauthorized (another key's)."""
    canonical = parse_stream_id(stream_id)
    stream = streams.get(canonical) if canonical else None
    if stream is None:
        hint = "" if canonical else " (stream ids are UUIDs)"
        raise StreamNotFound(f"stream {stream_id} not found{hint}")
    if stream.owner != owner:
        raise StreamUnauthorized(f"stream {stream_id} belongs to another API key", stream_id=stream_id)
    return stream


def require_active(stream: Stream) -> Stream:
    if not stream.active:
        raise StreamNotFound(f"stream {stream.id} has ended ({stream.end_reason})")
    return stream
