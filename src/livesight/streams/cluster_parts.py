"""The small parts of streams/cluster.py: its settings, and how a Redis record becomes a `Stream`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from livesight.core.errors import StreamLimitExceeded
from livesight.core.frame import BufferStats
from livesight.core.records import StreamFacts
from livesight.store.redis_state import SharedStream
from livesight.streams.stream import Stream

log = logging.getLogger("livesight.streams.cluster")
NO_FACTS = StreamFacts(BufferStats())


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    node_id: str
    claim_ttl_ms: int = 6_000
    tick_ms: int = 500
    grace_ms: int = 6_000
    facts_every_ticks: int = 4  # owners publish their streams' facts this often (non-owners show them)
    full_resync_ms: int = 30_000
    capacity: int = 500  # active streams this node takes before placement prefers others
    internal_url: str | None = None  # where other nodes forward this node's streams' requests (api/internal.py)
    adopt_index_gap: int = 1_000
    """A re-placed stream's next `frame_index` is this far past the last one its lost owner published
    (owners publish facts every `facts_every_ticks`: at 30 fps a few seconds are ~100 frames), so no
    index is ever handed out twice; the skipped ones read as evicted (410)."""


def limit_error(limit: int) -> StreamLimitExceeded:
    return StreamLimitExceeded(
        f"this API key already has {limit} active streams (the limit, counted across the cluster); "
        "delete one or let it expire"
    )


def from_shared(record: SharedStream) -> Stream:
    stream = Stream(
        id=record.id,
        owner=record.owner,
        created_at_ms=record.created_at_ms,
        ttl_seconds=record.ttl_seconds,
        expires_at_ms=record.expires_at_ms,
        source=record.source,
        state=record.state,
        ended_at_ms=record.ended_at_ms,
        end_reason=record.end_reason,
    )
    if record.state == "ended":
        stream.final = replace(record.final or NO_FACTS)
    return stream


def settled(inflight: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
    def done(op: asyncio.Task[None]) -> None:
        inflight.discard(op)
        if not op.cancelled() and (exc := op.exception()) is not None and not isinstance(exc, StreamLimitExceeded):
            log.debug("cluster change failed: %s", exc)

    return done
