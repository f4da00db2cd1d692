"""The stream registry: who owns which stream, its Lease, its state, its telemetry.

Streams live in memory in the process that holds their frames. An ended stream becomes a tombstone
with its final telemetry frozen, answers GET for `tombstone_ms`, then disappears. Ending a stream
calls every end hook (ingest uses one to disconnect the publisher) and frees its frames.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from livesight.buffer.pool import BufferPool
from livesight.buffer.ring import FrameWindow
from livesight.core.clock import Clock
from livesight.core.errors import StreamLimitExceeded, StreamNotFound, StreamUnauthorized
from livesight.core.frame import FrameInfo, IngestFrame, IngestTarget, StreamEndHook
from livesight.core.ids import new_stream_id, parse_stream_id

log = logging.getLogger(__name__)

EndReason = Literal["expired", "deleted", "source_failed"]


@dataclass(frozen=True, slots=True)
class RegistryLimits:
    ttl_seconds: int = 300
    tombstone_ms: int = 3_600_000
    max_active_per_owner: int = 20


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
    source: dict[str, Any] | None = None
    state: Literal["active", "ended"] = "active"
    ended_at_ms: int | None = None
    end_reason: EndReason | None = None
    publisher: Publisher = field(default_factory=Publisher)
    width: int | None = None
    height: int | None = None
    frozen: dict[str, Any] | None = None  # final telemetry of an ended stream

    @property
    def active(self) -> bool:
        return self.state == "active"


class _Target:
    """IngestTarget for one stream: ingest's only handle on the registry and buffer."""

    def __init__(self, registry: StreamRegistry, stream: Stream) -> None:
        self._registry = registry
        self._stream = stream

    @property
    def stream_id(self) -> str:
        return self._stream.id

    @property
    def active(self) -> bool:
        return self._stream.active

    def push_frame(self, frame: IngestFrame) -> None:
        if self._stream.active:
            self._registry._push(self._stream, frame)

    def publisher_connected(self, identity: str, *, codec: str | None = None) -> None:
        pub = self._stream.publisher
        pub.connected, pub.identity, pub.codec = True, identity, codec
        pub.connected_at_ms = self._registry.clock.now_ms()

    def publisher_disconnected(self, reason: str | None = None) -> None:
        self._stream.publisher.connected = False
        if reason:
            self.report_error(reason)

    def report_error(self, message: str | None) -> None:
        pub = self._stream.publisher
        pub.last_error = message
        pub.last_error_at_ms = self._registry.clock.now_ms() if message else None
        if message:
            log.warning("stream %s: %s", self._stream.id, message)


class StreamRegistry:
    """Implements `core.frame.StreamDirectory` for ingest and the stream endpoints' operations."""

    def __init__(self, clock: Clock, pool: BufferPool, limits: RegistryLimits | None = None) -> None:
        self.clock = clock
        self.pool = pool
        self.limits = limits or RegistryLimits()
        self._streams: dict[str, Stream] = {}
        self._active_by_owner: dict[str, int] = {}
        self._end_hooks: list[StreamEndHook] = []

    # --- lifecycle ------------------------------------------------------------------------------

    def create(self, owner: str, *, source: dict[str, Any] | None = None) -> Stream:
        if self._active_by_owner.get(owner, 0) >= self.limits.max_active_per_owner:
            raise StreamLimitExceeded(
                f"this API key already has {self.limits.max_active_per_owner} active streams "
                "(the limit); delete one or let it expire"
            )
        now = self.clock.now_ms()
        ttl = self.limits.ttl_seconds
        stream = Stream(
            id=new_stream_id(),
            owner=owner,
            created_at_ms=now,
            ttl_seconds=ttl,
            expires_at_ms=now + ttl * 1000,
            source=source,
        )
        self._streams[stream.id] = stream
        self._active_by_owner[owner] = self._active_by_owner.get(owner, 0) + 1
        return stream

    def get(self, stream_id: str, owner: str) -> Stream:
        """The stream, active or tombstone. Raises StreamNotFound or StreamUnauthorized."""
        canonical = parse_stream_id(stream_id)
        stream = self._streams.get(canonical) if canonical else None
        if stream is None:
            hint = "" if canonical else " (stream ids are UUIDs)"
            raise StreamNotFound(f"stream {stream_id} not found{hint}")
        if stream.owner != owner:
            raise StreamUnauthorized(f"stream {stream_id} belongs to another API key", stream_id=stream_id)
        return stream

    def get_active(self, stream_id: str, owner: str) -> Stream:
        stream = self.get(stream_id, owner)
        if not stream.active:
            raise StreamNotFound(f"stream {stream_id} has ended ({stream.end_reason})")
        return stream

    def keepalive(self, stream_id: str, owner: str) -> Stream:
        stream = self.get_active(stream_id, owner)
        stream.expires_at_ms = self.clock.now_ms() + stream.ttl_seconds * 1000
        return stream

    def end(self, stream: Stream, reason: EndReason) -> None:
        """End a stream (idempotent): freeze telemetry, free frames, call end hooks."""
        if not stream.active:
            return
        stream.frozen = self.telemetry(stream)
        stream.state = "ended"
        stream.ended_at_ms = self.clock.now_ms()
        stream.end_reason = reason
        stream.publisher.connected = False
        stream.frozen.update(
            state="ended",
            ended_at_ms=stream.ended_at_ms,
            end_reason=reason,
            expires_at_ms=None,
            publisher_connected=False,
            recent_fps=0.0,
        )
        self._active_by_owner[stream.owner] -= 1
        self.pool.drop(stream.id)
        for hook in self._end_hooks:
            try:
                hook(stream.id)
            except Exception:
                log.exception("end hook failed for stream %s", stream.id)

    def reap(self) -> list[str]:
        """End expired streams, forget old tombstones, age out frames. Returns ids ended now."""
        now = self.clock.now_ms()
        ended: list[str] = []
        forget: list[str] = []
        for stream in self._streams.values():
            if stream.active and stream.expires_at_ms <= now:
                ended.append(stream.id)
            elif not stream.active and (stream.ended_at_ms or 0) + self.limits.tombstone_ms <= now:
                forget.append(stream.id)
        for sid in ended:
            self.end(self._streams[sid], "expired")
        for sid in forget:
            del self._streams[sid]
        self.pool.sweep()
        return ended

    def end_all(self, reason: EndReason = "deleted") -> int:
        """End every active stream; returns how many were active."""
        active = [s for s in self._streams.values() if s.active]
        for stream in active:
            self.end(stream, reason)
        return len(active)

    # --- ingest side (core.frame.StreamDirectory) ------------------------------------------------

    def ingest_target(self, stream_id: str) -> IngestTarget | None:
        canonical = parse_stream_id(stream_id)
        stream = self._streams.get(canonical) if canonical else None
        if stream is None or not stream.active:
            return None
        return _Target(self, stream)

    def add_end_hook(self, hook: StreamEndHook) -> None:
        self._end_hooks.append(hook)

    def _push(self, stream: Stream, frame: IngestFrame) -> FrameInfo:
        stream.width, stream.height = frame.width, frame.height
        return self.pool.append(stream.id, frame)

    # --- reading --------------------------------------------------------------------------------

    def window(self, stream: Stream) -> FrameWindow | None:
        """Snapshot of an active stream's retained frames (None before the first frame)."""
        ring = self.pool.get(stream.id) if stream.active else None
        return ring.window() if ring is not None else None

    def stream_time_ms(self, stream: Stream) -> int:
        ring = self.pool.get(stream.id)
        return ring.stream_time_ms if ring else 0

    def active_count(self, owner: str) -> int:
        return self._active_by_owner.get(owner, 0)

    def telemetry(self, stream: Stream) -> dict[str, Any]:
        """The GET /streams/{id} fields (CONTRACT §3), plus livesight's own."""
        if stream.frozen is not None:
            return dict(stream.frozen)
        ring = self.pool.get(stream.id)
        oldest = ring.oldest if ring else None
        newest = ring.newest if ring else None
        pub = stream.publisher
        return {
            "id": stream.id,
            "state": stream.state,
            "stream_time_ms": self.stream_time_ms(stream),
            "first_frame_at_ms": ring.first_frame_at_ms if ring else None,
            "last_frame_at_ms": newest.arrived_at_ms if newest else None,
            "last_frame_index": newest.index if newest else None,
            "first_available_frame_at_ms": oldest.arrived_at_ms if oldest else None,
            "first_available_frame_index": oldest.index if oldest else None,
            "created_at_ms": stream.created_at_ms,
            "recent_fps": ring.recent_fps(self.clock.now_ms()) if ring else 0.0,
            "retained_frame_count": ring.retained_count if ring else 0,
            "evicted_frame_count": ring.evicted_count if ring else 0,
            "retained_bytes": ring.nbytes if ring else 0,
            "expires_at_ms": stream.expires_at_ms if stream.active else None,
            "ttl_seconds": stream.ttl_seconds,
            "ended_at_ms": stream.ended_at_ms,
            "end_reason": stream.end_reason,
            "audio": False,
            "width": stream.width,
            "height": stream.height,
            "codec": pub.codec,
            "publisher_connected": pub.connected,
            "last_error": pub.last_error,
            "last_error_at_ms": pub.last_error_at_ms,
            "source": stream.source,
        }
