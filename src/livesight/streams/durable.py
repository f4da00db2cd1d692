"""Stream records in a `StreamStore`, and the high-water marks that let indexes survive a kill.

With a store, every stream's record survives a restart (frames do not). Create, keepalive and end
write through. Per-frame state is never written per frame: the record holds high-water marks
`index_hwm` / `clock_hwm_ms` set a reserve ahead of what was handed out. The reaper tick
(`checkpoint`) moves a stream's marks forward when it has used half its reserve; the write runs on
the journal's thread (streams/journal.py) and the new marks count only once committed, while the old
ones still cover the other half of the reserve. A stream that reaches its durable mark anyway (more
than INDEX_RESERVE/2 frames or CLOCK_RESERVE_MS/2 of stream time before a write lands) waits for a
write at once, before the frame is visible. After a restart a stream continues at its marks, so
indexes and stream times are strictly after anything handed out before; the jump is at most one
reserve. Frames before the marks are reported as lost in the restart.

The marks are this implementation's business: they live here, keyed by stream id, not on `Stream`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from livesight.buffer.pool import BufferPool
from livesight.buffer.ring import FrameRing
from livesight.core.frame import FrameInfo
from livesight.core.records import StreamRecord, StreamStore
from livesight.streams.journal import Journal
from livesight.streams.stream import Stream

log = logging.getLogger(__name__)

INDEX_RESERVE = 600  # frames: 20 s at 30 fps
CLOCK_RESERVE_MS = 10_000


@dataclass(slots=True)
class Marks:
    index_hwm: int = INDEX_RESERVE  # written or being written
    clock_hwm_ms: int = CLOCK_RESERVE_MS
    durable_index_hwm: int = 0  # known to be committed (set on the writer thread: plain int stores)
    durable_clock_hwm_ms: int = 0


class Persistence:
    """The registry's link to its store: writes records in order, keeps each stream's marks."""

    def __init__(self, store: StreamStore, pool: BufferPool, *, background: bool = False) -> None:
        self.store = store
        self.journal = Journal(store, background=background)
        self._pool = pool
        self._marks: dict[str, Marks] = {}

    def marks(self, stream_id: str) -> Marks:
        marks = self._marks.get(stream_id)
        if marks is None:
            marks = self._marks[stream_id] = Marks()
        return marks

    def load(self) -> list[Stream]:
        """Every stored stream, oldest ended first; active ones get a ring that continues at their marks."""
        streams: list[Stream] = []
        for rec in sorted(self.store.load(), key=lambda r: (r.ended_at_ms or 0, r.created_at_ms, r.id)):
            self._marks[rec.id] = Marks(rec.index_hwm, rec.clock_hwm_ms, rec.index_hwm, rec.clock_hwm_ms)
            stream = from_record(rec)
            if stream.active:
                self._pool.restore(stream.id, rec.index_hwm, rec.clock_hwm_ms, rec.first_frame_at_ms)
            streams.append(stream)
        return streams

    def write(self, streams: Sequence[Stream]) -> Future[None] | None:
        """Write these streams' records, moving active ones' marks a full reserve ahead."""
        if not streams:
            return None
        planned: list[tuple[Marks, int, int]] = []
        for stream in streams:
            marks = self.marks(stream.id)
            ring = self._pool.get(stream.id) if stream.active else None
            if ring is not None:
                marks.index_hwm = max(marks.index_hwm, ring.next_index + INDEX_RESERVE)
                marks.clock_hwm_ms = max(marks.clock_hwm_ms, ring.stream_time_ms + CLOCK_RESERVE_MS)
            planned.append((marks, marks.index_hwm, marks.clock_hwm_ms))

        def committed() -> None:  # on the writer thread: plain int stores, read by the loop
            for marks, index_hwm, clock_hwm_ms in planned:
                marks.durable_index_hwm = max(marks.durable_index_hwm, index_hwm)
                marks.durable_clock_hwm_ms = max(marks.durable_clock_hwm_ms, clock_hwm_ms)

        records = [
            to_record(s, self._pool.get(s.id), index_hwm, clock_hwm_ms)
            for s, (_, index_hwm, clock_hwm_ms) in zip(streams, planned, strict=True)
        ]
        return self.journal.write(records, committed)

    def checkpoint(self, streams: Iterable[Stream], *, everything: bool = False) -> int:
        """Move the marks of active streams that used half their reserve (all with `everything`) in one
        transaction. Returns how many records were written."""
        due = [s for s in streams if s.active and (everything or self._needs_checkpoint(s))]
        self.write(due)
        return len(due)

    def frame_added(self, stream: Stream, info: FrameInfo) -> None:
        """Past the committed marks: block until a write covers this frame, before anyone sees it."""
        marks = self.marks(stream.id)
        if info.index < marks.durable_index_hwm and info.timestamp_ms < marks.durable_clock_hwm_ms:
            return
        future = self.write([stream])
        try:
            if future is not None:
                future.result(timeout=30)
        except Exception:
            log.exception("stream %s: its index/clock marks could not be saved", stream.id)

    def forget(self, stream_ids: list[str]) -> None:
        for sid in stream_ids:
            self._marks.pop(sid, None)
        if stream_ids:
            self.journal.forget(stream_ids)

    async def saved(self) -> None:
        await self.journal.saved()

    def close(self, active: Iterable[Stream]) -> None:
        """Checkpoint every active stream and close the store (the streams stay active in it)."""
        self.checkpoint(active, everything=True)
        self.journal.close()

    def _needs_checkpoint(self, stream: Stream) -> bool:
        ring = self._pool.get(stream.id)
        if ring is None:
            return False
        marks = self.marks(stream.id)
        return (
            ring.next_index + INDEX_RESERVE // 2 > marks.index_hwm
            or ring.stream_time_ms + CLOCK_RESERVE_MS // 2 > marks.clock_hwm_ms
        )


def to_record(stream: Stream, ring: FrameRing | None, index_hwm: int, clock_hwm_ms: int) -> StreamRecord:
    first = ring.first_frame_at_ms if ring else None
    if first is None and stream.final is not None:
        first = stream.final.buffer.first_frame_at_ms
    return StreamRecord(
        id=stream.id,
        owner=stream.owner,
        created_at_ms=stream.created_at_ms,
        ttl_seconds=stream.ttl_seconds,
        expires_at_ms=stream.expires_at_ms,
        state=stream.state,
        source=stream.source,
        ended_at_ms=stream.ended_at_ms,
        end_reason=stream.end_reason,
        index_hwm=index_hwm,
        clock_hwm_ms=clock_hwm_ms,
        first_frame_at_ms=first,
        final=stream.final,
    )


def from_record(rec: StreamRecord) -> Stream:
    return Stream(
        id=rec.id,
        owner=rec.owner,
        created_at_ms=rec.created_at_ms,
        ttl_seconds=rec.ttl_seconds,
        expires_at_ms=rec.expires_at_ms,
        source=rec.source,
        state=rec.state,
        ended_at_ms=rec.ended_at_ms,
        end_reason=rec.end_reason,
        final=rec.final,
    )
