"""`ClusterDirectory` ticks driven by hand (FakeClock) against a real redis-server: the grace rule."""

from __future__ import annotations

import uuid

from livesight.buffer.pool import BufferPool
from livesight.core.clock import FakeClock
from livesight.store.redis_state import ClusterState, SharedStream
from livesight.streams.cluster import ClusterDirectory
from livesight.streams.cluster_parts import ClusterConfig
from livesight.streams.registry import RegistryLimits, StreamRegistry

GRACE_MS = 1000


def _directory(state: ClusterState, clock: FakeClock) -> ClusterDirectory:
    local = StreamRegistry(clock, BufferPool(clock), RegistryLimits(expire_locally=False))
    config = ClusterConfig("n1", claim_ttl_ms=GRACE_MS, tick_ms=50, grace_ms=GRACE_MS)
    return ClusterDirectory(local, state, config, clock)


async def _lost_node_stream(state: ClusterState, clock: FakeClock) -> str:
    """An active stream of node n2, whose claim has lapsed (n2 is gone) and whose claim deadline passed."""
    sid = str(uuid.uuid4())
    now = clock.now_ms()
    record = SharedStream(sid, "key_a", now, 300, now + 300_000, "active", "n2", 0)
    await state.create(record, claim_ttl_ms=GRACE_MS, limit=9, now_ms=now - 2 * GRACE_MS)
    await state.redis.delete(f"ls:claim:{sid}")
    return sid


async def test_nothing_is_reaped_for_a_grace_after_joining_or_reconnecting(state: ClusterState) -> None:
    clock = FakeClock()
    directory = _directory(state, clock)
    clock.advance(5 * GRACE_MS)  # long after the node started: only the reconnect grace is left
    sid = await _lost_node_stream(state, clock)
    await directory.tick()  # the first tick that reaches Redis: a reconnect
    assert directory.reachable
    assert (await state.record(sid)).state == "active"  # type: ignore[union-attr]
    clock.advance(GRACE_MS)
    await directory.tick()
    rec = await state.record(sid)
    assert rec is not None and rec.state == "ended" and rec.end_reason == "node_lost"
    assert directory.get(sid, "key_a").end_reason == "node_lost"  # and the mirror shows it


async def test_an_emptied_redis_starts_a_grace_too(state: ClusterState) -> None:
    clock = FakeClock()
    directory = _directory(state, clock)
    await directory.tick()
    clock.advance(2 * GRACE_MS)
    await directory.tick()  # grace over, all quiet
    await state.redis.flushall()  # Redis restarted without its data
    sid = await _lost_node_stream(state, clock)
    await directory.tick()  # finds a new generation: owners get a grace to restore
    assert (await state.record(sid)).state == "active"  # type: ignore[union-attr]
    clock.advance(GRACE_MS)
    await directory.tick()
    assert (await state.record(sid)).end_reason == "node_lost"  # type: ignore[union-attr]
