"""`StreamDirectory`: everything the rest of livesight may ask of the stream layer.

The API routes, the chat resolver, the metrics collector and the app's wiring type against this
protocol, never against an implementation. `streams.registry.StreamRegistry` is the local one
(streams in this process's memory, records in a `core.records.StreamStore`); a shared one (Redis)
can implement it too. Nothing here names a store, a table or a dict: a stream is a `Stream` value,
a stream's buffer and publisher are `StreamFacts`, its frames a `FrameWindow`.

Errors: `get`/`get_active`/`keepalive` raise `StreamNotFound` or `StreamUnauthorized` (another
owner's stream), `create` raises `StreamLimitExceeded`.
"""

from __future__ import annotations

from typing import Protocol

from livesight.buffer.ring import FrameWindow
from livesight.core.frame import IngestDirectory
from livesight.core.records import EndReason, SourceSpec, StreamFacts
from livesight.streams.stream import Stream


class StreamDirectory(IngestDirectory, Protocol):
    """The streams of every owner; each call is scoped by `owner` where a client asks."""

    @property
    def durable(self) -> bool:
        """True when streams outlive the process (kept across a restart), False when they end with it."""
        ...

    def create(self, owner: str, *, source: SourceSpec | None = None) -> Stream: ...

    def get(self, stream_id: str, owner: str) -> Stream:
        """The stream, active or tombstone."""
        ...

    def get_active(self, stream_id: str, owner: str) -> Stream: ...

    def keepalive(self, stream_id: str, owner: str) -> Stream:
        """Renew an active stream's lease by its TTL."""
        ...

    def owned(self, owner: str) -> list[Stream]:
        """The owner's streams in listing order (`streams.stream.list_key`)."""
        ...

    def all_active(self) -> list[Stream]: ...

    def active_count(self, owner: str) -> int: ...

    def end(self, stream: Stream, reason: EndReason) -> None:
        """End a stream (idempotent): freeze its facts, free its frames, call the end hooks."""
        ...

    def end_all(self, reason: EndReason = "deleted") -> int:
        """End every active stream; returns how many were active."""
        ...

    def reap(self) -> list[str]:
        """One housekeeping tick: end expired streams, forget old tombstones. Returns ids ended now."""
        ...

    def facts(self, stream: Stream) -> StreamFacts:
        """The stream's buffer and publisher now (a tombstone's: frozen when it ended)."""
        ...

    def window(self, stream: Stream) -> FrameWindow | None:
        """Snapshot of an active stream's retained frames (None before the first frame)."""
        ...

    async def saved(self) -> None:
        """Wait until every change so far is durable (handlers, before answering the client)."""
        ...

    def close(self) -> None:
        """At shutdown, after the last request: make every active stream durable and release the store."""
        ...
