"""The one source of timestamps: stream, frame, lease and key times the server hands out or stores.

Tests drive those with FakeClock instead of sleeping. Not from a Clock, on purpose:
- timeouts and intervals (the reaper tick, ping and stale-publisher timeouts, upstream deadlines) are
  durations of real time on the event loop's monotonic clock: tests of them poll with generous bounds
  (tests/support/polling.py);
- publish-token expiry (ingest/tokens.py): the livekit SDK signs and checks JWTs against the real wall
  clock, as every LiveKit client does;
- the `livesight publish` client (ingest/publisher.py, pattern.py) paces and stamps its frames in real
  time: it is a publisher, not the server.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock Unix time in milliseconds, never decreasing within one process."""
        ...


class SystemClock:
    """Wall clock that never runs backwards (a stepped system clock holds until it catches up)."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        now = time.time_ns() // 1_000_000
        with self._lock:
            if now < self._last:
                return self._last
            self._last = now
            return now


class FakeClock:
    """A clock that moves only when told to. Thread-safe (servers under test run in a thread)."""

    def __init__(self, start_ms: int = 1_800_000_000_000) -> None:
        self._now = start_ms
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            return self._now

    def advance(self, ms: int) -> int:
        if ms < 0:
            raise ValueError("a clock never goes backwards")
        with self._lock:
            self._now += ms
            return self._now
