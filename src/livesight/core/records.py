"""The durable record of a stream and the store seam that keeps it (SQLite today, Redis later).

The stream layer (`livesight.streams`) writes records; store/streams.py implements `StreamStore`.
The record holds what a restart needs to continue a stream truthfully: who owns it, its lease, its
state, its pulled source, and two high-water marks: `index_hwm` (no frame index ever handed out is
>= it) and `clock_hwm_ms` (no stream time ever handed out is >= it). Frames themselves are never
stored; a tombstone keeps `final`, what it showed when it ended.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from livesight.core.frame import BufferStats

StreamState = Literal["active", "ended"]
EndReason = Literal["expired", "deleted", "source_failed", "node_lost"]
SourceKind = Literal["rtsp", "hls", "file", "livekit_room"]
TrackSourceKind = Literal["camera", "screen_share"]
END_REASONS: tuple[EndReason, ...] = ("expired", "deleted", "source_failed", "node_lost")
SOURCE_KINDS: tuple[SourceKind, ...] = ("rtsp", "hls", "file", "livekit_room")


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """A server-pulled source (`POST /streams` with `source`): where ingest pulls frames from.

    A `livekit_room` source also names the room, and optionally the participant and track source to
    follow; its credentials ride in `credentials`, which is never stored (the stores write the other
    fields only), never shown (GET /streams/{id}) and never in a repr: after a restart the source
    cannot rejoin, and its stream ends `source_failed` (docs/ingest.md)."""

    type: SourceKind
    url: str
    room: str | None = None
    participant: str | None = None
    track_source: TrackSourceKind | None = None
    credentials: RoomCredentials | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class RoomCredentials:
    """How a `livekit_room` source joins: a token the caller minted, or an API key and secret to mint
    a hidden, subscribe-only one with. Held in memory only; the repr shows neither secret."""

    token: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)
    api_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class StreamFacts:
    """What a stream shows beyond its record: its buffer and its publisher, as plain values.

    A live stream's facts change with every frame; a tombstone keeps the ones it had when it ended."""

    buffer: BufferStats
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    publisher_connected: bool = False
    last_error: str | None = None
    last_error_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class StreamRecord:
    id: str
    owner: str
    created_at_ms: int
    ttl_seconds: int
    expires_at_ms: int
    state: StreamState
    source: SourceSpec | None = None
    ended_at_ms: int | None = None
    end_reason: EndReason | None = None
    index_hwm: int = 0
    clock_hwm_ms: int = 0
    first_frame_at_ms: int | None = None
    final: StreamFacts | None = None  # a tombstone's facts when it ended


class StreamStore(Protocol):
    def load(self) -> list[StreamRecord]:
        """Every stored record (active streams and tombstones)."""
        ...

    def put(self, records: Sequence[StreamRecord]) -> None:
        """Insert or replace these records, all in one transaction."""
        ...

    def forget(self, stream_ids: Sequence[str]) -> None: ...

    def close(self) -> None: ...
