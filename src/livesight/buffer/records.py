"""A stream as the registry holds it, and its durable record (`core.records.StreamRecord`) both ways."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, cast

from livesight.buffer.ring import FrameRing
from livesight.core.records import StreamRecord

EndReason = Literal["expired", "deleted", "source_failed"]


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
    index_hwm: int = 0  # marks written or being written (see buffer/registry.py)
    clock_hwm_ms: int = 0
    durable_index_hwm: int = 0  # marks known to be committed
    durable_clock_hwm_ms: int = 0

    @property
    def active(self) -> bool:
        return self.state == "active"


def list_key(stream: Stream) -> tuple[int, int, str]:
    """Listing order: active first (newest created first), then tombstones (newest ended first)."""
    if stream.active:
        return (0, -stream.created_at_ms, stream.id)
    return (1, -(stream.ended_at_ms or 0), stream.id)


def to_record(stream: Stream, ring: FrameRing | None, index_hwm: int, clock_hwm_ms: int) -> StreamRecord:
    first = ring.first_frame_at_ms if ring else None
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
        first_frame_at_ms=first if first is not None else (stream.frozen or {}).get("first_frame_at_ms"),
        frozen=stream.frozen,
    )


def from_record(rec: StreamRecord) -> Stream:
    """The stream of a stored record; its stored marks are committed by definition."""
    return Stream(
        id=rec.id,
        owner=rec.owner,
        created_at_ms=rec.created_at_ms,
        ttl_seconds=rec.ttl_seconds,
        expires_at_ms=rec.expires_at_ms,
        source=rec.source,
        state="active" if rec.state == "active" else "ended",
        ended_at_ms=rec.ended_at_ms,
        end_reason=cast(EndReason | None, rec.end_reason),
        frozen=rec.frozen,
        index_hwm=rec.index_hwm,
        clock_hwm_ms=rec.clock_hwm_ms,
        durable_index_hwm=rec.index_hwm,
        durable_clock_hwm_ms=rec.clock_hwm_ms,
    )
