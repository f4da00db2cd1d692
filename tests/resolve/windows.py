"""Real FrameWindows with chosen stream times, for the selector tests."""

from __future__ import annotations

from collections.abc import Sequence

from livesight.buffer.ring import FrameRing, FrameWindow
from livesight.core.frame import IngestFrame, JpegPayload

START_MS = 1_800_000_000_000


def make_window(timestamps: Sequence[int], evicted: int = 0) -> FrameWindow:
    """A ring holding frames at these stream times (the first must be 0), the oldest `evicted` evicted."""
    assert timestamps
    assert timestamps[0] == 0
    ring = FrameRing()
    for ts in timestamps:
        info = ring.append(IngestFrame("s", float(ts), 64, 48, JpegPayload(b"x")), START_MS + ts)
        assert info.timestamp_ms == ts
    for _ in range(evicted):
        ring.evict_oldest(keep_newest=False)
    return ring.window()


def uniform(count: int, fps: float = 30.0) -> list[int]:
    return [round(i * 1000 / fps) for i in range(count)]
