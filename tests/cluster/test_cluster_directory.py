"""`ClusterDirectory` ticks driven by hand (FakeClock) against a real redis-server: the grace rule."""

from __future__ import annotations

import uuid

from livesight.buffer.pool import BufferPool
from livesight.core.clock import FakeClock
from livesight.core.frame import BufferStats, IngestFrame, JpegPayload
from livesight.core.records import StreamFacts
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


def _gateway_directory(state: ClusterState, clock: FakeClock, node: str) -> tuple[ClusterDirectory, list[str]]:
    """A node in gateway mode (`livekit_url`): it re-places lost nodes' published streams."""
    local = StreamRegistry(clock, BufferPool(clock), RegistryLimits(expire_locally=False))
    config = ClusterConfig(node, claim_ttl_ms=GRACE_MS, tick_ms=50, grace_ms=GRACE_MS, adopt_index_gap=100)
    directory = ClusterDirectory(local, state, config, clock)
    adopted: list[str] = []
    directory.adopt_lost = lambda stream: stream.source is None
    directory.on_adopted.append(lambda stream: adopted.append(stream.id))
    return directory, adopted


async def test_in_gateway_mode_a_lost_nodes_stream_is_re_placed_on_one_surviving_node(state: ClusterState) -> None:
    clock = FakeClock()
    one, adopted_one = _gateway_directory(state, clock, "n1")
    two, adopted_two = _gateway_directory(state, clock, "n3")
    sid = await _lost_node_stream(state, clock)
    facts = StreamFacts(BufferStats(stream_time_ms=9_000, last_frame_index=269, first_frame_at_ms=5))
    await state.publish_facts({sid: facts})  # what the lost node last told the cluster
    clock.advance(5 * GRACE_MS)
    for directory in (one, two):
        await directory.tick()  # joined: a grace before anything is reaped or re-placed
    clock.advance(GRACE_MS)
    await one.tick()
    await two.tick()  # too late: n1 holds the claim now
    record = await state.record(sid)
    assert record is not None and record.state == "active" and record.node == "n1" and record.epoch >= 1
    assert adopted_one == [sid] and adopted_two == []
    stream = one.get_active(sid, "key_a")
    assert one.serving(sid) and not two.serving(sid)
    window_facts = one.facts(stream).buffer
    assert window_facts.stream_time_ms >= 9_000  # the stream clock continues
    assert window_facts.gaps == 1  # GET /v1/streams/{id} says the stream went on after a gap
    one.local.pool.append(sid, _frame())
    assert one.local.pool.get(sid).window().infos()[0].index == 270 + 100  # past anything n2 could have handed out
    await two.tick()
    assert two.owner_node(sid) == "n1"  # the others forward to the new owner


async def test_a_stream_the_node_may_not_re_place_ends_node_lost(state: ClusterState) -> None:
    clock = FakeClock()
    one, adopted = _gateway_directory(state, clock, "n1")
    one.adopt_lost = lambda stream: False  # e.g. a pulled source: its URL may need the caller's credentials
    sid = await _lost_node_stream(state, clock)
    clock.advance(5 * GRACE_MS)
    await one.tick()
    clock.advance(GRACE_MS)
    await one.tick()
    record = await state.record(sid)
    assert record is not None and record.end_reason == "node_lost" and adopted == []


def _frame() -> IngestFrame:
    return IngestFrame("s", 0.0, 64, 48, JpegPayload(b"jpeg"))


async def test_a_draining_gateway_node_hands_its_streams_to_a_surviving_node(state: ClusterState) -> None:
    clock = FakeClock()
    one, _ = _gateway_directory(state, clock, "n1")
    two, adopted = _gateway_directory(state, clock, "n3")
    clock.advance(5 * GRACE_MS)
    for directory in (one, two):
        await directory.tick()
    clock.advance(GRACE_MS)
    for directory in (one, two):
        await directory.tick()  # both past their grace
    stream = one.create("key_a")
    await one.saved()
    assert await one.hand_off() == 1
    assert not one.serving(stream.id)
    record = await state.record(stream.id)
    assert record is not None and record.state == "active" and record.node == "n1"  # untouched: not ended
    await two.tick()  # the released claim is due at once
    record = await state.record(stream.id)
    assert record is not None and record.node == "n3" and record.state == "active" and adopted == [stream.id]
