"""`StreamRegistry`: the local `StreamDirectory`, streams in this process's memory.

Streams live in the memory of the process that holds their frames. An ended stream becomes a
tombstone with its final facts frozen, answers GET for `tombstone_ms` (and while it is one of the
newest `max_tombstones`), then disappears. Ending a stream calls every end hook (ingest uses one to
disconnect the publisher) and frees its frames. With a `StreamStore`, records survive a restart:
streams/durable.py says how, and why frames never cost a write.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from livesight.buffer.pool import BufferPool
from livesight.buffer.ring import FrameWindow
from livesight.core.clock import Clock
from livesight.core.errors import StreamLimitExceeded
from livesight.core.frame import BufferStats, FrameInfo, IngestFrame, IngestTarget, StreamEndHook
from livesight.core.ids import new_stream_id, parse_stream_id
from livesight.core.metrics import NULL_RECORDER, Recorder
from livesight.core.records import EndReason, SourceSpec, StreamFacts, StreamStore
from livesight.streams.durable import Persistence
from livesight.streams.stream import Stream, find_stream, list_key, require_active
from livesight.streams.target import StreamTarget

log = logging.getLogger(__name__)
__all__ = ["RegistryLimits", "StreamRegistry"]


@dataclass(frozen=True, slots=True)
class RegistryLimits:
    ttl_seconds: int = 300
    tombstone_ms: int = 3_600_000
    max_active_per_owner: int = 20
    max_tombstones: int = 10_000
    # False when another component owns lease expiry (streams/cluster.py: the Redis reaper decides)
    expire_locally: bool = True


class StreamRegistry:
    """Implements `streams.directory.StreamDirectory` (and so ingest's `core.frame.IngestDirectory`)."""

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
        self.persistence = Persistence(store, pool, background=background_writes) if store is not None else None
        self._streams: dict[str, Stream] = {}
        self._tombstones: dict[str, None] = {}  # ids of ended streams, oldest ended first
        self._active_by_owner: dict[str, int] = {}
        self._end_hooks: list[StreamEndHook] = []
        if self.persistence is not None:
            self._restore(self.persistence)

    @property
    def durable(self) -> bool:
        return self.persistence is not None

    async def saved(self) -> None:
        """Wait until every record written so far is committed (request handlers, before answering)."""
        if self.persistence is not None:
            await self.persistence.saved()

    # --- lifecycle ------------------------------------------------------------------------------

    def create(self, owner: str, *, source: SourceSpec | None = None) -> Stream:
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
        self._write([stream])
        self._streams[stream.id] = stream
        self._active_by_owner[owner] = self._active_by_owner.get(owner, 0) + 1
        self.recorder.stream_created()
        return stream

    def get(self, stream_id: str, owner: str) -> Stream:
        """The stream, active or tombstone. Raises StreamNotFound or StreamUnauthorized."""
        return find_stream(self._streams, stream_id, owner)

    def get_active(self, stream_id: str, owner: str) -> Stream:
        return require_active(self.get(stream_id, owner))

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

    def active_count(self, owner: str) -> int:
        return self._active_by_owner.get(owner, 0)

    def end(self, stream: Stream, reason: EndReason) -> None:
        """End a stream (idempotent): freeze its facts, free frames, call end hooks."""
        if not stream.active:
            return
        final = self.facts(stream)
        stream.state = "ended"
        stream.ended_at_ms = self.clock.now_ms()
        stream.end_reason = reason
        stream.publisher.connected = False
        stream.final = replace(final, buffer=replace(final.buffer, recent_fps=0.0), publisher_connected=False)
        self.recorder.stream_ended(reason)
        self._active_by_owner[stream.owner] -= 1
        self._write([stream])  # before the cap may forget it, so the store forgets it too
        self._tombstones[stream.id] = None
        self._cap_tombstones()
        self.pool.drop(stream.id)
        stream.feed.close()
        for hook in self._end_hooks:
            try:
                hook(stream.id)
            except Exception:
                log.exception("end hook failed for stream %s", stream.id)

    def reap(self) -> list[str]:
        """End expired streams, forget old tombstones, age out frames, checkpoint. Returns ids ended now."""
        now = self.clock.now_ms()
        ended = [s.id for s in self._streams.values() if s.active and s.expires_at_ms <= now]
        if not self.limits.expire_locally:
            ended = []
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
        `everything`) in one transaction. Returns how many records were written."""
        if self.persistence is None:
            return 0
        return self.persistence.checkpoint(self._streams.values(), everything=everything)

    def end_all(self, reason: EndReason = "deleted") -> int:
        """End every active stream; returns how many were active."""
        active = self.all_active()
        for stream in active:
            self.end(stream, reason)
        return len(active)

    def close(self) -> None:
        """Checkpoint every active stream and close the store (streams stay active in it)."""
        if self.persistence is not None:
            self.persistence.close(self.all_active())

    # --- persistence ----------------------------------------------------------------------------

    def _write(self, streams: list[Stream]) -> None:
        if self.persistence is not None:
            self.persistence.write(streams)

    def _restore(self, persistence: Persistence) -> None:
        """Load the stored records: active streams continue, expired ones end, old tombstones go."""
        now = self.clock.now_ms()
        stale: list[str] = []
        resumed: list[Stream] = []
        expired: list[Stream] = []
        loaded = persistence.load()
        for stream in loaded:
            if stream.active:
                self._active_by_owner[stream.owner] = self._active_by_owner.get(stream.owner, 0) + 1
                (resumed if stream.expires_at_ms > now else expired).append(stream)
            elif (stream.ended_at_ms or 0) + self.limits.tombstone_ms > now:
                self._tombstones[stream.id] = None
            else:
                stale.append(stream.id)
                continue
            self._streams[stream.id] = stream
        persistence.forget(stale)
        written = persistence.write(resumed)  # marks a reserve past the restored ones, before any frame
        if written is not None:
            written.result()
        for stream in expired:
            self.end(stream, "expired")
        self._cap_tombstones()
        if loaded:
            log.info(
                "restored %d active streams and %d tombstones (%d expired while the server was down)",
                len(resumed),
                len(self._tombstones) - len(expired),
                len(expired),
            )

    def adopt(self, stream: Stream, buffer: BufferStats | None, *, index_gap: int) -> None:
        """Serve an active stream re-placed from a lost node (streams/cluster.py `_adopt`): its frames
        died with that node, so its ring starts empty, `index_gap` past the last index the node
        published (`buffer`), with the stream clock continuing from there."""
        self._streams[stream.id] = stream
        self._active_by_owner[stream.owner] = self._active_by_owner.get(stream.owner, 0) + 1
        last = buffer.last_frame_index if buffer is not None else None
        next_index = (last + 1 if last is not None else 0) + index_gap  # it may have had frames nobody published
        stream_time = buffer.stream_time_ms if buffer is not None else 0
        first_frame_at_ms = buffer.first_frame_at_ms if buffer else None
        gaps = (buffer.gaps if buffer else 0) + 1
        self.pool.restore(stream.id, next_index, stream_time, first_frame_at_ms, gaps=gaps)
        self._write([stream])

    def _cap_tombstones(self) -> None:
        excess = len(self._tombstones) - self.limits.max_tombstones
        if excess > 0:
            self._forget(list(self._tombstones)[:excess])

    def _forget(self, stream_ids: list[str]) -> None:
        for sid in stream_ids:
            del self._streams[sid]
            self._tombstones.pop(sid, None)
        if self.persistence is not None:
            self.persistence.forget(stream_ids)

    # --- ingest side (core.frame.IngestDirectory) ------------------------------------------------

    def ingest_target(self, stream_id: str) -> IngestTarget | None:
        canonical = parse_stream_id(stream_id)
        stream = self._streams.get(canonical) if canonical else None
        if stream is None or not stream.active:
            return None
        return StreamTarget(stream, self._push, self.clock, self.recorder)

    def add_end_hook(self, hook: StreamEndHook) -> None:
        self._end_hooks.append(hook)

    def _push(self, stream: Stream, frame: IngestFrame) -> FrameInfo:
        stream.width, stream.height = frame.width, frame.height
        info = self.pool.append(stream.id, frame)
        if self.persistence is not None:
            self.persistence.frame_added(stream, info)
        return info

    # --- reading --------------------------------------------------------------------------------

    def window(self, stream: Stream) -> FrameWindow | None:
        """Snapshot of an active stream's retained frames (None before the first frame)."""
        ring = self.pool.get(stream.id) if stream.active else None
        return ring.window() if ring is not None else None

    def facts(self, stream: Stream) -> StreamFacts:
        """The stream's buffer and publisher now; a tombstone's are those it had when it ended."""
        if stream.final is not None:
            return stream.final
        ring = self.pool.get(stream.id)
        pub = stream.publisher
        return StreamFacts(
            buffer=ring.stats(self.clock.now_ms()) if ring else BufferStats(),
            width=stream.width,
            height=stream.height,
            codec=pub.codec,
            publisher_connected=pub.connected,
            last_error=pub.last_error,
            last_error_at_ms=pub.last_error_at_ms,
        )
