"""All rings of a process and their budgets: retention time, per-stream bytes, global bytes.

Eviction always takes the oldest GOP (a JPEG frame is a GOP of its own): of the appending stream for
its own budget, of the whole process (the ring whose oldest frame arrived first) for the global budget.
Budgets never take a stream's newest GOP, so every stream that produces frames keeps the frames it is
producing: the budgets can be exceeded by at most one open GOP per stream (about 0.5 MB for a 2 s GOP
at 2 Mbit/s).
"""

from __future__ import annotations

from dataclasses import dataclass

from livesight.buffer.reader import FrameStoreReader
from livesight.buffer.ring import FrameRing
from livesight.core.clock import Clock
from livesight.core.frame import FrameInfo, IngestFrame


@dataclass(frozen=True, slots=True)
class BufferLimits:
    retention_ms: int = 600_000
    stream_budget_bytes: int = 1024 * 1024 * 1024
    global_budget_bytes: int = 4 * 1024 * 1024 * 1024


class BufferPool:
    def __init__(
        self,
        clock: Clock,
        limits: BufferLimits | None = None,
        *,
        reader: FrameStoreReader | None = None,
    ) -> None:
        self._clock = clock
        self.limits = limits or BufferLimits()
        self.reader = reader or FrameStoreReader()  # its decode threads start on the first decode
        self._rings: dict[str, FrameRing] = {}
        self.nbytes = 0
        self.budget_evictions = 0
        self._evicted_by_dropped = 0  # evictions of rings already dropped, for evicted_total()

    def ring(self, stream_id: str) -> FrameRing:
        ring = self._rings.get(stream_id)
        if ring is None:
            ring = self._rings[stream_id] = FrameRing(stream_id=stream_id, reader=self.reader)
        return ring

    def restore(
        self, stream_id: str, next_index: int, stream_time_ms: int, first_frame_at_ms: int | None, *, gaps: int = 0
    ) -> None:
        """An empty ring that continues a stream after a server restart (see FrameRing.restore)."""
        ring = self.ring(stream_id)
        ring.restore(next_index, stream_time_ms, self._clock.now_ms(), first_frame_at_ms, gaps=gaps)

    def get(self, stream_id: str) -> FrameRing | None:
        return self._rings.get(stream_id)

    def drop(self, stream_id: str) -> None:
        """Free a stream's frames (the ring object stays usable by windows already taken)."""
        ring = self._rings.pop(stream_id, None)
        if ring is not None:
            self._evicted_by_dropped += ring.evicted_count
            self.nbytes -= ring.clear()
            self.reader.forget(stream_id)

    def append(self, stream_id: str, frame: IngestFrame) -> FrameInfo:
        ring = self.ring(stream_id)
        now = self._clock.now_ms()
        info = ring.append(frame, now)
        self.nbytes += frame.payload.nbytes
        self.nbytes -= ring.evict_arrived_before(now - self.limits.retention_ms)
        while ring.nbytes > self.limits.stream_budget_bytes and ring.gop_count > 1:
            self.nbytes -= ring.evict_oldest()
            self.budget_evictions += 1
        while self.nbytes > self.limits.global_budget_bytes:
            victim = self._globally_oldest()
            if victim is None:
                break
            self.nbytes -= victim.evict_oldest()
            self.budget_evictions += 1
        self.reader.frame_appended(ring, info)
        return info

    def sweep(self) -> None:
        """Evict by retention time; call periodically so idle streams age out too."""
        cutoff = self._clock.now_ms() - self.limits.retention_ms
        for ring in self._rings.values():
            self.nbytes -= ring.evict_arrived_before(cutoff)

    def retained_frames(self) -> int:
        return sum(ring.retained_count for ring in self._rings.values())

    def evicted_total(self) -> int:
        """Frames evicted (retention or budget) since the process started, freed streams' included."""
        return self._evicted_by_dropped + sum(ring.evicted_count for ring in self._rings.values())

    def _globally_oldest(self) -> FrameRing | None:
        best: FrameRing | None = None
        best_at = 0
        for ring in self._rings.values():
            oldest = ring.oldest
            if oldest is None or ring.gop_count <= 1:
                continue
            if best is None or oldest.arrived_at_ms < best_at:
                best, best_at = ring, oldest.arrived_at_ms
        return best
