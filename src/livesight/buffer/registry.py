"""The stream registry: who owns which stream, its Lease, its state, its telemetry.

Streams live in memory in the process that holds their frames. An ended stream becomes a tombstone
with its final telemetry frozen, answers GET for `tombstone_ms` (and while it is one of the newest
`max_tombstones`), then disappears. Ending a stream calls every end hook (ingest uses one to
disconnect the publisher) and frees its frames.

With a `StreamStore`, every stream's record survives a restart (frames do not). Create, keepalive
and end write through. Per-frame state is never written per frame: the record holds high-water
marks `index_hwm` / `clock_hwm_ms` set a reserve ahead of what was handed out. The reaper tick
(`checkpoint`) moves a stream's marks forward when it has used half its reserve; the write runs on
the journal's thread (buffer/journal.py) and the new marks count only once committed, while the
old ones still cover the other half of the reserve. A stream that reaches its durable mark anyway
(more than INDEX_RESERVE/2 frames or CLOCK_RESERVE_MS/2 of stream time before a write lands) waits
for a write at once, before the frame is visible. After a restart a stream continues
at its marks, so indexes and stream times are strictly after anything handed out before; the jump
is at most one reserve. Frames before the marks are reported as lost in the restart.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from livesight.buffer.journal import Journal
from livesight.buffer.pool import BufferPool
from livesight.buffer.records import EndReason, Publisher, Stream, from_record, list_key, to_record
from livesight.buffer.ring import FrameWindow
from livesight.core.clock import Clock
from livesight.core.errors import StreamLimitExceeded, StreamNotFound, StreamUnauthorized
from livesight.core.frame import FrameInfo, IngestFrame, IngestTarget, StreamEndHook
from livesight.core.ids import new_stream_id, parse_stream_id
from livesight.core.metrics import NULL_RECORDER, Recorder
from livesight.core.records import StreamStore

log = logging.getLogger(__name__)
__all__ = ["CLOCK_RESERVE_MS", "INDEX_RESERVE", "Publisher", "RegistryLimits", "Stream", "StreamRegistry"]

INDEX_RESERVE = 600  # frames: 20 s at 30 fps
CLOCK_RESERVE_MS = 10_000


@dataclass(frozen=True, slots=True)
class RegistryLimits:
    ttl_seconds: int = 300
    tombstone_ms: int = 3_600_000
    max_active_per_owner: int = 20
    max_tombstones: int = 10_000


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
        self._registry.recorder.frame_received(self._stream.publisher.codec)
        if self._stream.active:
            self._registry._push(self._stream, frame)
            self._registry.recorder.frame_kept(self._stream.publisher.codec)

    def frame_dropped(self) -> None:
        self._registry.recorder.frame_dropped(self._stream.publisher.codec)

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

    def __init__(
        self,
        clock: Clock,
        pool: BufferPool,
        limits: RegistryLimits | None = None,
        store: StreamStore | None = None,
        *,
        background_writes: bool = False,
        recorder: Recorder = NULL_RECORDER,
    ) -> None:
        self.clock = clock
        self.recorder = recorder
        self.pool = pool
        self.limits = limits or RegistryLimits()
        self.store = store
        self.journal = Journal(store, background=background_writes) if store is not None else None
        self._streams: dict[str, Stream] = {}
        self._tombstones: dict[str, None] = {}  # ids of ended streams, oldest ended first
        self._active_by_owner: dict[str, int] = {}
        self._end_hooks: list[StreamEndHook] = []
        if store is not None:
            self._restore(store)

    async def saved(self) -> None:
        """Wait until every record written so far is committed (request handlers, before answering)."""
        if self.journal is not None:
            await self.journal.saved()

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
            index_hwm=INDEX_RESERVE,
            clock_hwm_ms=CLOCK_RESERVE_MS,
        )
        self._write([stream])
        self._streams[stream.id] = stream
        self._active_by_owner[owner] = self._active_by_owner.get(owner, 0) + 1
        self.recorder.stream_created()
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
        self._write([stream])
        return stream

    def all_active(self) -> list[Stream]:
        return [s for s in self._streams.values() if s.active]

    def owned(self, owner: str) -> list[Stream]:
        """The owner's streams: active ones newest created first, then tombstones newest ended first."""
        mine = [s for s in self._streams.values() if s.owner == owner]
        return sorted(mine, key=list_key)

    def end(self, stream: Stream, reason: EndReason) -> None:
        """End a stream (idempotent): freeze telemetry, free frames, call end hooks."""
        if not stream.active:
            return
        stream.frozen = self.telemetry(stream)
        stream.state = "ended"
        stream.ended_at_ms = self.clock.now_ms()
        stream.end_reason = reason
        self.recorder.stream_ended(reason)
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
        self._write([stream])  # before the cap may forget it, so the store forgets it too
        self._tombstones[stream.id] = None
        self._cap_tombstones()
        self.pool.drop(stream.id)
        for hook in self._end_hooks:
            try:
                hook(stream.id)
            except Exception:
                log.exception("end hook failed for stream %s", stream.id)

    def reap(self) -> list[str]:
        """End expired streams, forget old tombstones, age out frames, checkpoint. Returns ids ended now."""
        now = self.clock.now_ms()
        ended = [s.id for s in self._streams.values() if s.active and s.expires_at_ms <= now]
        for sid in ended:
            self.end(self._streams[sid], "expired")
        forget: list[str] = []
        for sid in self._tombstones:  # oldest ended first: stop at the first one still kept
            if (self._streams[sid].ended_at_ms or 0) + self.limits.tombstone_ms > now:
                break
            forget.append(sid)
        self._forget(forget)
        self.pool.sweep()
        self.checkpoint()
        return ended

    def checkpoint(self, *, everything: bool = False) -> int:
        """Move the durable marks of streams that used half their reserve (all active ones with
        `everything`, e.g. at shutdown) in one transaction. Returns how many records were written."""
        if self.journal is None:
            return 0
        due = [s for s in self._streams.values() if s.active and (everything or self._needs_checkpoint(s))]
        self._write(due)
        return len(due)

    def end_all(self, reason: EndReason = "deleted") -> int:
        """End every active stream; returns how many were active."""
        active = [s for s in self._streams.values() if s.active]
        for stream in active:
            self.end(stream, reason)
        return len(active)

    def close(self) -> None:
        """Checkpoint every active stream and close the store (streams stay active in it)."""
        if self.journal is not None:
            self.checkpoint(everything=True)
            self.journal.close()

    # --- persistence ----------------------------------------------------------------------------

    def _needs_checkpoint(self, stream: Stream) -> bool:
        ring = self.pool.get(stream.id)
        if ring is None:
            return False
        return (
            ring.next_index + INDEX_RESERVE // 2 > stream.index_hwm
            or ring.stream_time_ms + CLOCK_RESERVE_MS // 2 > stream.clock_hwm_ms
        )

    def _write(self, streams: list[Stream]) -> Future[None] | None:
        """Write these streams' records, moving active ones' marks a full reserve ahead."""
        if self.journal is None or not streams:
            return None
        marks: list[tuple[int, int]] = []
        for stream in streams:
            ring = self.pool.get(stream.id) if stream.active else None
            if ring is None:
                marks.append((stream.index_hwm, stream.clock_hwm_ms))
            else:
                marks.append(
                    (
                        max(stream.index_hwm, ring.next_index + INDEX_RESERVE),
                        max(stream.clock_hwm_ms, ring.stream_time_ms + CLOCK_RESERVE_MS),
                    )
                )
        for stream, (index_hwm, clock_hwm_ms) in zip(streams, marks, strict=True):
            stream.index_hwm, stream.clock_hwm_ms = index_hwm, clock_hwm_ms

        def committed() -> None:  # on the writer thread: plain int stores, read by the loop
            for stream, (index_hwm, clock_hwm_ms) in zip(streams, marks, strict=True):
                stream.durable_index_hwm = max(stream.durable_index_hwm, index_hwm)
                stream.durable_clock_hwm_ms = max(stream.durable_clock_hwm_ms, clock_hwm_ms)

        records = [to_record(s, self.pool.get(s.id), *m) for s, m in zip(streams, marks, strict=True)]
        return self.journal.write(records, committed)

    def _restore(self, store: StreamStore) -> None:
        """Load the stored records: active streams continue, expired ones end, old tombstones go."""
        now = self.clock.now_ms()
        stale: list[str] = []
        resumed: list[Stream] = []
        expired: list[Stream] = []
        records = store.load()
        for rec in sorted(records, key=lambda r: (r.ended_at_ms or 0, r.created_at_ms, r.id)):
            stream = from_record(rec)
            if stream.active:
                self.pool.restore(stream.id, rec.index_hwm, rec.clock_hwm_ms, rec.first_frame_at_ms)
                self._active_by_owner[stream.owner] = self._active_by_owner.get(stream.owner, 0) + 1
                (resumed if stream.expires_at_ms > now else expired).append(stream)
            elif (stream.ended_at_ms or 0) + self.limits.tombstone_ms > now:
                self._tombstones[stream.id] = None
            else:
                stale.append(stream.id)
                continue
            self._streams[stream.id] = stream
        if stale:
            store.forget(stale)
        written = self._write(resumed)  # marks a reserve past the restored ones, before any frame
        if written is not None:
            written.result()
        for stream in expired:
            self.end(stream, "expired")
        self._cap_tombstones()
        if records:
            log.info(
                "restored %d active streams and %d tombstones (%d expired while the server was down)",
                len(resumed),
                len(self._tombstones) - len(expired),
                len(expired),
            )

    def _wait_durable(self, stream: Stream) -> None:
        """Past the committed marks: block until a write covers this frame, before anyone sees it."""
        future = self._write([stream])
        try:
            if future is not None:
                future.result(timeout=30)
        except Exception:
            log.exception("stream %s: its index/clock marks could not be saved", stream.id)

    def _cap_tombstones(self) -> None:
        excess = len(self._tombstones) - self.limits.max_tombstones
        if excess > 0:
            self._forget(list(self._tombstones)[:excess])

    def _forget(self, stream_ids: list[str]) -> None:
        for sid in stream_ids:
            del self._streams[sid]
            self._tombstones.pop(sid, None)
        if self.journal is not None and stream_ids:
            self.journal.forget(stream_ids)

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
        info = self.pool.append(stream.id, frame)
        if self.journal is not None and (
            info.index >= stream.durable_index_hwm or info.timestamp_ms >= stream.durable_clock_hwm_ms
        ):
            self._wait_durable(stream)

        return info

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
