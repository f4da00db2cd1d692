"""One stream's retained frames: a contiguous range of lifetime indexes, oldest evicted first.

Frames live in two parallel lists with a moving head. Compaction replaces the lists instead of
mutating them, so a `FrameWindow` taken earlier stays a consistent, immutable snapshot: appends land
past its end and compaction never touches the lists it holds. Eviction drops the payload reference
(in place), so a window reports an evicted payload as None instead of keeping memory alive.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from operator import attrgetter

from livesight.buffer.stream_clock import StreamClock
from livesight.core.frame import BufferStats, FrameInfo, FramePayload, IngestFrame

_ts_key = attrgetter("timestamp_ms")
_arrival_key = attrgetter("arrived_at_ms")
_COMPACT_MIN = 1024
RECENT_FPS_WINDOW_MS = 5_000


@dataclass(frozen=True, slots=True)
class FrameWindow:
    """A snapshot of a ring's retained frames. Cheap to take (O(1)); safe to keep across awaits."""

    _infos: list[FrameInfo]
    _payloads: list[FramePayload | None]
    _lo: int
    _hi: int  # exclusive
    _base: int  # lifetime index of list position 0
    next_index: int  # the index the next frame will get (= frames ever produced)
    restart_index: int | None = None  # frames before this index were lost in a server restart
    restart_ms: int | None = None  # stream time at that restart (frames before it were lost)

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
        """The frame's pixels, or None if evicted since this window was taken."""
        pos = index - self._base
        if not self._lo <= pos < self._hi:
            raise IndexError(f"frame {index} is not in this window")
        return self._payloads[pos]

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

    def __init__(self, stream_clock: StreamClock | None = None) -> None:
        self._clock = stream_clock or StreamClock()
        self._infos: list[FrameInfo] = []
        self._payloads: list[FramePayload | None] = []
        self._head = 0
        self._base = 0
        self.nbytes = 0
        self.evicted_count = 0
        self.first_frame_at_ms: int | None = None
        self.restart_index: int | None = None
        self.restart_ms: int | None = None

    def restore(self, next_index: int, stream_time_ms: int, now_ms: int, first_frame_at_ms: int | None) -> None:
        """Continue a stream after a server restart: indexes from `next_index`, stream time after
        `stream_time_ms`; every earlier frame is reported as lost in the restart."""
        assert not self._infos, "restore an empty ring only"
        self._base = next_index
        self._clock.resume(stream_time_ms, now_ms)
        self.first_frame_at_ms = first_frame_at_ms
        self.restart_index = next_index
        self.restart_ms = stream_time_ms

    # --- writing ------------------------------------------------------------------------------

    def append(self, frame: IngestFrame, arrived_at_ms: int) -> FrameInfo:
        if self._infos and arrived_at_ms < self._infos[-1].arrived_at_ms:
            arrived_at_ms = self._infos[-1].arrived_at_ms
        info = FrameInfo(
            index=self._base + len(self._infos),
            timestamp_ms=self._clock.stamp(frame.session, frame.media_ms, arrived_at_ms),
            arrived_at_ms=arrived_at_ms,
            width=frame.width,
            height=frame.height,
        )
        self._infos.append(info)
        self._payloads.append(frame.payload)
        self.nbytes += frame.payload.nbytes
        if self.first_frame_at_ms is None:
            self.first_frame_at_ms = arrived_at_ms
        return info

    def evict_oldest(self) -> int:
        """Evict the oldest retained frame; returns the bytes freed (0 if nothing retained)."""
        if self._head >= len(self._infos):
            return 0
        payload = self._payloads[self._head]
        freed = payload.nbytes if payload is not None else 0
        self._payloads[self._head] = None
        self._head += 1
        self.nbytes -= freed
        self.evicted_count += 1
        if self._head >= _COMPACT_MIN and self._head * 2 >= len(self._infos):
            self._compact()
        return freed

    def evict_arrived_before(self, cutoff_ms: int) -> int:
        """Evict every frame that arrived before `cutoff_ms`; returns the bytes freed."""
        freed = 0
        while self._head < len(self._infos) and self._infos[self._head].arrived_at_ms < cutoff_ms:
            freed += self.evict_oldest()
        return freed

    def clear(self) -> int:
        freed = 0
        while self._head < len(self._infos):
            freed += self.evict_oldest()
        return freed

    def _compact(self) -> None:
        self._infos = self._infos[self._head :]
        self._payloads = self._payloads[self._head :]
        self._base += self._head
        self._head = 0

    # --- reading ------------------------------------------------------------------------------

    def window(self) -> FrameWindow:
        return FrameWindow(
            self._infos,
            self._payloads,
            self._head,
            len(self._infos),
            self._base,
            self.next_index,
            self.restart_index,
            self.restart_ms,
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
