"""One stream's retained frames: a contiguous range of lifetime indexes, oldest evicted first, in GOPs.

A GOP is a keyframe and the encoded frames after it up to the next keyframe; a JPEG frame is a GOP of
its own. Frames are evicted a whole GOP at a time at the old end, so the retained range always starts
at a frame that decodes by itself. Budgets never evict the newest GOP (a stream keeps the frames it is
producing); retention evicts a GOP once all its frames are older than the cutoff (an idle stream ages
out entirely, as before).

Frames live in parallel lists with a moving head. Compaction replaces the lists instead of mutating
them, so a `FrameWindow` taken earlier stays a consistent, immutable snapshot: appends land past its
end and compaction never touches the lists it holds. Eviction drops the payload reference (in place),
so a window reports an evicted payload as None instead of keeping memory alive.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from operator import attrgetter
from typing import Protocol

from livesight.buffer.stream_clock import StreamClock
from livesight.core.frame import BufferStats, EncodedPayload, FrameInfo, FramePayload, IngestFrame

_ts_key = attrgetter("timestamp_ms")
_arrival_key = attrgetter("arrived_at_ms")
_COMPACT_MIN = 1024
RECENT_FPS_WINDOW_MS = 5_000
_KEYFRAME_SPAN = 10  # GOPs averaged for keyframe_interval_ms


class FrameReader(Protocol):
    """Turns retained frames into JPEGs (buffer.reader.FrameStoreReader)."""

    async def jpegs(self, window: FrameWindow, indexes: Sequence[int], label: str) -> list[bytes]: ...


@dataclass(frozen=True, slots=True)
class FrameWindow:
    """A snapshot of a ring's retained frames. Cheap to take (O(1)); safe to keep across awaits."""

    _infos: list[FrameInfo]
    _payloads: list[FramePayload | None]
    _starts: list[int]  # lifetime indexes of GOP starts, ascending
    _nstarts: int  # starts that existed when the window was taken
    _lo: int
    _hi: int  # exclusive
    _base: int  # lifetime index of list position 0
    next_index: int  # the index the next frame will get (= frames ever produced)
    restart_index: int | None = None  # frames before this index were lost in a server restart
    restart_ms: int | None = None  # stream time at that restart (frames before it were lost)
    stream_id: str = ""
    reader: FrameReader | None = None

    @property
    def count(self) -> int:
        return self._hi - self._lo

    @property
    def first_index(self) -> int | None:
        return self._base + self._lo if self._hi > self._lo else None

    @property
    def last_index(self) -> int | None:
        return self._base + self._hi - 1 if self._hi > self._lo else None

    def __contains__(self, index: int) -> bool:
        return self._lo <= index - self._base < self._hi

    def info(self, index: int) -> FrameInfo:
        pos = index - self._base
        if not self._lo <= pos < self._hi:
            raise IndexError(f"frame {index} is not in this window")
        return self._infos[pos]

    def payload(self, index: int) -> FramePayload | None:
        """The frame's stored form, or None if evicted since this window was taken."""
        pos = index - self._base
        if not self._lo <= pos < self._hi:
            raise IndexError(f"frame {index} is not in this window")
        return self._payloads[pos]

    def gop_start(self, index: int) -> int:
        """Lifetime index of the first frame of `index`'s GOP (the keyframe it decodes from)."""
        if index not in self:
            raise IndexError(f"frame {index} is not in this window")
        pos = bisect_right(self._starts, index, 0, self._nstarts) - 1
        return self._starts[pos] if pos >= 0 else index

    async def jpegs(self, indexes: Sequence[int], label: str) -> list[bytes]:
        """The frames as JPEGs, in order (decoded on demand for encoded frames). Raises `FrameEvicted`,
        `FrameUndecodable` or `DecoderBusy` (core.errors); `label` names the request in messages."""
        if self.reader is None:
            raise RuntimeError("this window has no reader")
        return await self.reader.jpegs(self, indexes, label)

    def infos(self, start: int | None = None, stop: int | None = None) -> list[FrameInfo]:
        """Retained frames with lifetime index in [start, stop), oldest first."""
        lo = self._lo if start is None else min(max(start - self._base, self._lo), self._hi)
        hi = self._hi if stop is None else min(max(stop - self._base, lo), self._hi)
        return self._infos[lo:hi]

    def index_at_or_after(self, timestamp_ms: int) -> int | None:
        """Lifetime index of the first frame with stream time >= timestamp_ms."""
        pos = bisect_left(self._infos, timestamp_ms, self._lo, self._hi, key=_ts_key)
        return self._base + pos if pos < self._hi else None

    def index_at_or_before(self, timestamp_ms: int) -> int | None:
        """Lifetime index of the last frame with stream time <= timestamp_ms."""
        pos = bisect_right(self._infos, timestamp_ms, self._lo, self._hi, key=_ts_key) - 1
        return self._base + pos if pos >= self._lo else None


class FrameRing:
    """Frames of one stream. Not thread-safe: use it from the event loop."""

    def __init__(
        self, stream_clock: StreamClock | None = None, *, stream_id: str = "", reader: FrameReader | None = None
    ) -> None:
        self.gaps = 0  # see restore()
        self._clock = stream_clock or StreamClock()
        self.stream_id = stream_id
        self.reader = reader
        self._infos: list[FrameInfo] = []
        self._payloads: list[FramePayload | None] = []
        self._starts: list[int] = []  # lifetime indexes of GOP starts
        self._shead = 0  # position in _starts of the oldest retained GOP
        self._head = 0
        self._base = 0
        self.nbytes = 0
        self.evicted_count = 0
        self.first_frame_at_ms: int | None = None
        self.restart_index: int | None = None
        self.restart_ms: int | None = None
        self._codec: str | None = None  # codec of the newest encoded frame (None: the newest is a JPEG)

    def restore(
        self, next_index: int, stream_time_ms: int, now_ms: int, first_frame_at_ms: int | None, *, gaps: int = 0
    ) -> None:
        """Continue a stream after a server restart (or, `gaps` > 0, on another node after its node was
        lost): indexes from `next_index`, stream time after `stream_time_ms`; every earlier frame is
        reported as lost in the restart."""
        assert not self._infos, "restore an empty ring only"
        self.gaps = gaps
        self._base = next_index
        self._clock.resume(stream_time_ms, now_ms)
        self.first_frame_at_ms = first_frame_at_ms
        self.restart_index = next_index
        self.restart_ms = stream_time_ms

    # --- writing ------------------------------------------------------------------------------

    def append(self, frame: IngestFrame, arrived_at_ms: int) -> FrameInfo:
        if self._infos and arrived_at_ms < self._infos[-1].arrived_at_ms:
            arrived_at_ms = self._infos[-1].arrived_at_ms
        index = self._base + len(self._infos)
        payload = frame.payload
        if isinstance(payload, EncodedPayload):
            if payload.keyframe:
                self._starts.append(index)
            elif self._codec != payload.codec or self._head >= len(self._infos):
                # nothing to decode it from (ingest never sends this, but the store must not lie)
                payload = replace(payload, damaged=True)
                self._starts.append(index)
            self._codec = payload.codec
        else:
            self._starts.append(index)
            self._codec = None
        info = FrameInfo(
            index=index,
            timestamp_ms=self._clock.stamp(frame.session, frame.media_ms, arrived_at_ms),
            arrived_at_ms=arrived_at_ms,
            width=frame.width,
            height=frame.height,
        )
        self._infos.append(info)
        self._payloads.append(payload)
        self.nbytes += payload.nbytes
        if self.first_frame_at_ms is None:
            self.first_frame_at_ms = arrived_at_ms
        return info

    @property
    def gop_count(self) -> int:
        return len(self._starts) - self._shead if self._head < len(self._infos) else 0

    def evict_oldest(self, *, keep_newest: bool = True) -> int:
        """Evict the oldest retained GOP; returns the bytes freed (0 if nothing could be evicted). With
        `keep_newest` the GOP that holds the newest frame stays."""
        if self._head >= len(self._infos) or (keep_newest and self.gop_count <= 1):
            return 0
        stop = self._starts[self._shead + 1] - self._base if self.gop_count > 1 else len(self._infos)
        freed = 0
        for pos in range(self._head, stop):
            payload = self._payloads[pos]
            freed += payload.nbytes if payload is not None else 0
            self._payloads[pos] = None
        self.evicted_count += stop - self._head
        self._head = stop
        self._shead += 1
        self.nbytes -= freed
        if self._head >= _COMPACT_MIN and self._head * 2 >= len(self._infos):
            self._compact()
        return freed

    def evict_arrived_before(self, cutoff_ms: int) -> int:
        """Evict every GOP whose frames all arrived before `cutoff_ms`; returns the bytes freed."""
        freed = 0
        while self._head < len(self._infos):
            last = self._starts[self._shead + 1] - self._base - 1 if self.gop_count > 1 else len(self._infos) - 1
            if self._infos[last].arrived_at_ms >= cutoff_ms:
                break
            freed += self.evict_oldest(keep_newest=False)
        return freed

    def clear(self) -> int:
        freed = 0
        while self._head < len(self._infos):
            freed += self.evict_oldest(keep_newest=False)
        return freed

    def _compact(self) -> None:
        self._infos = self._infos[self._head :]
        self._payloads = self._payloads[self._head :]
        self._starts = self._starts[self._shead :]
        self._base += self._head
        self._head = 0
        self._shead = 0

    # --- reading ------------------------------------------------------------------------------

    def window(self) -> FrameWindow:
        return FrameWindow(
            self._infos,
            self._payloads,
            self._starts,
            len(self._starts),
            self._head,
            len(self._infos),
            self._base,
            self.next_index,
            self.restart_index,
            self.restart_ms,
            self.stream_id,
            self.reader,
        )

    @property
    def next_index(self) -> int:
        return self._base + len(self._infos)

    @property
    def retained_count(self) -> int:
        return len(self._infos) - self._head

    @property
    def oldest(self) -> FrameInfo | None:
        return self._infos[self._head] if self._head < len(self._infos) else None

    @property
    def newest(self) -> FrameInfo | None:
        return self._infos[-1] if self._head < len(self._infos) else None

    @property
    def stream_time_ms(self) -> int:
        """The newest stream time handed out (after a restart: the resumed mark until a frame arrives)."""
        return self._clock.last_ms or 0

    def keyframe_interval_ms(self) -> int | None:
        """Mean stream time between the last keyframes (None for JPEG frames or fewer than two GOPs)."""
        if self._codec is None or self.gop_count < 2:
            return None
        first = max(self._shead, len(self._starts) - 1 - _KEYFRAME_SPAN)
        span = len(self._starts) - 1 - first
        older, newer = (self._infos[self._starts[i] - self._base] for i in (first, len(self._starts) - 1))
        return round((newer.timestamp_ms - older.timestamp_ms) / span)

    def stats(self, now_ms: int) -> BufferStats:
        """The ring's facts as plain values (GET /streams/{id} shows them)."""
        oldest, newest = self.oldest, self.newest
        return BufferStats(
            stream_time_ms=self.stream_time_ms,
            first_frame_at_ms=self.first_frame_at_ms,
            last_frame_at_ms=newest.arrived_at_ms if newest else None,
            last_frame_index=newest.index if newest else None,
            first_available_frame_at_ms=oldest.arrived_at_ms if oldest else None,
            first_available_frame_index=oldest.index if oldest else None,
            recent_fps=self.recent_fps(now_ms),
            retained_frame_count=self.retained_count,
            evicted_frame_count=self.evicted_count,
            retained_bytes=self.nbytes,
            keyframe_interval_ms=self.keyframe_interval_ms(),
            gaps=self.gaps,
        )

    def recent_fps(self, now_ms: int) -> float:
        """Frames retained per second over the last few seconds (0 when the stream stalls)."""
        if self.first_frame_at_ms is None or self._head >= len(self._infos):
            return 0.0
        since = now_ms - RECENT_FPS_WINDOW_MS
        pos = bisect_right(self._infos, since, self._head, len(self._infos), key=_arrival_key)
        recent = len(self._infos) - pos
        if self.first_frame_at_ms > since:
            # younger than the window: rate over the frames seen so far
            span_ms = self._infos[-1].arrived_at_ms - self._infos[pos].arrived_at_ms if recent else 0
            return round((recent - 1) * 1000 / span_ms, 2) if span_ms > 0 else float(recent)
        return round(recent * 1000 / RECENT_FPS_WINDOW_MS, 2)
