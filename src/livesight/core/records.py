"""The durable record of a stream and the store seam that keeps it (SQLite today, Redis later).

The registry (buffer) writes records; store/streams.py implements `StreamStore`. The record holds
what a restart needs to continue a stream truthfully: who owns it, its lease, its state, its pulled
source, and two high-water marks: `index_hwm` (no frame index ever handed out is >= it) and
`clock_hwm_ms` (no stream time ever handed out is >= it). Frames themselves are never stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class StreamRecord:
    id: str
    owner: str
    created_at_ms: int
    ttl_seconds: int
    expires_at_ms: int
    state: str  # "active" | "ended"
    source: dict[str, Any] | None = None
    ended_at_ms: int | None = None
    end_reason: str | None = None
    index_hwm: int = 0
    clock_hwm_ms: int = 0
    first_frame_at_ms: int | None = None
    frozen: dict[str, Any] | None = None  # final telemetry of a tombstone


class StreamStore(Protocol):
    def load(self) -> list[StreamRecord]:
        """Every stored record (active streams and tombstones)."""
        ...

    def put(self, records: Sequence[StreamRecord]) -> None:
        """Insert or replace these records, all in one transaction."""
        ...

    def forget(self, stream_ids: Sequence[str]) -> None: ...

    def close(self) -> None: ...
