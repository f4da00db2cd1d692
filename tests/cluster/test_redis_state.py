"""The Lua scripts of store/redis_state.py against a real redis-server."""

from __future__ import annotations

from livesight.core.frame import BufferStats
from livesight.core.records import StreamFacts
from livesight.store.redis_state import ClusterState, SharedStream


def _stream(sid: str, owner: str = "key_a", node: str = "n1", expires: int = 10_000) -> SharedStream:
    return SharedStream(sid, owner, 1_000, 60, expires, "active", node, 0)


async def test_create_counts_the_owner_cluster_wide(state: ClusterState) -> None:
    assert await state.create(_stream("s1"), claim_ttl_ms=5000, now_ms=1_000, limit=2) == 1
    assert await state.create(_stream("s2", node="n2"), claim_ttl_ms=5000, now_ms=1_000, limit=2) == 1
    assert await state.create(_stream("s3"), claim_ttl_ms=5000, now_ms=1_000, limit=2) == -1
    assert await state.create(_stream("s4", owner="key_b"), claim_ttl_ms=5000, now_ms=1_000, limit=2) == 1
    assert await state.end("s1", "deleted", 2_000)
    assert await state.create(_stream("s3"), claim_ttl_ms=5000, now_ms=1_000, limit=2) == 1
    assert await state.active_count("key_a") == 2


async def test_the_reaper_ends_only_streams_still_due(state: ClusterState) -> None:
    await state.create(_stream("s1", expires=5_000), claim_ttl_ms=5000, now_ms=1_000, limit=9)
    await state.create(_stream("s2", expires=9_000), claim_ttl_ms=5000, now_ms=1_000, limit=9)
    assert await state.due(6_000) == ["s1"]
    assert await state.keepalive("s1", "key_a", 20_000) == 1  # renewed between the read and the end
    assert not await state.end("s1", "expired", 6_000, if_due_by_ms=6_000)
    assert await state.end("s2", "expired", 9_500, if_due_by_ms=9_500)
    rec = await state.record("s2")
    assert rec is not None and rec.state == "ended" and rec.end_reason == "expired" and rec.ended_at_ms == 9_500
    assert await state.keepalive("s2", "key_a", 30_000) == 0
    assert await state.keepalive("s1", "key_other", 30_000) == -2
    assert not await state.end("s2", "deleted", 9_600)  # idempotent: the first end wins
    assert await state.claim_holder("s2") is None


async def test_tombstones_keep_their_final_facts_then_are_forgotten(state: ClusterState) -> None:
    await state.create(_stream("s1"), claim_ttl_ms=5000, now_ms=1_000, limit=9)
    await state.end("s1", "deleted", 2_000)
    await state.set_final("s1", StreamFacts(BufferStats(stream_time_ms=1234), width=640, height=480))
    rec = await state.record("s1")
    assert rec is not None and rec.final is not None and rec.final.buffer.stream_time_ms == 1234
    assert await state.forget_tombstones(1_999, 3_000) == 0
    assert await state.forget_tombstones(2_000, 3_000) == 1
    assert await state.record("s1") is None
    changes = await state.changes(0, await state.generation())
    assert changes.records == {"s1": None}  # mirrors see it go


async def test_claims_fence_a_second_owner(state: ClusterState) -> None:
    s = _stream("s1", node="n1")
    epoch = await state.create(s, claim_ttl_ms=300, now_ms=1_000, limit=9)
    held = SharedStream(**{**_fields(s), "epoch": epoch})
    assert await state.claim("s1", "n2", claim_ttl_ms=5000, now_ms=1_000) == 0  # n1 holds it
    assert await state.renew(held, claim_ttl_ms=300, now_ms=1_000) == 1
    await state.redis.delete("ls:claim:s1")  # n1's claim lapsed (it could not renew in time)
    assert await state.claim("s1", "n2", claim_ttl_ms=5000, now_ms=1_000) == epoch + 1
    assert await state.renew(held, claim_ttl_ms=300, now_ms=1_000) == 0  # n1 is fenced: it must stop serving s1
    assert await state.claim_holder("s1") == f"n2|{epoch + 1}"
    await state.redis.delete("ls:claim:s1")
    assert await state.renew(held, claim_ttl_ms=300, now_ms=1_000) == 0  # even with no claim: the epoch moved on


async def test_an_owner_restores_what_an_emptied_redis_lost(state: ClusterState) -> None:
    s = _stream("s1")
    epoch = await state.create(s, claim_ttl_ms=5000, now_ms=1_000, limit=9)
    gen = await state.generation()
    await state.redis.flushall()
    held = SharedStream(**{**_fields(s), "epoch": epoch})
    assert await state.renew(held, claim_ttl_ms=5000, now_ms=1_000) == 2
    rec = await state.record("s1")
    assert rec is not None and rec.state == "active" and rec.epoch == epoch and rec.node == "n1"
    assert await state.active_count("key_a") == 1
    changes = await state.changes(10_000, gen)
    assert changes.full and "s1" in changes.records


def _fields(s: SharedStream) -> dict[str, object]:
    return {f: getattr(s, f) for f in SharedStream.__slots__}


async def test_a_claim_nobody_renews_ends_its_stream_as_node_lost(state: ClusterState) -> None:
    await state.create(_stream("s1", node="n1"), claim_ttl_ms=200, now_ms=1_000, limit=9)
    await state.create(_stream("s2", node="n2"), claim_ttl_ms=60_000, now_ms=1_000, limit=9)
    assert await state.unrenewed(1_100) == []
    assert await state.unrenewed(1_300) == ["s1"]
    assert not await state.end("s1", "node_lost", 1_300, if_unclaimed=True)  # Redis still holds the claim
    await state.redis.delete("ls:claim:s1")  # its PX ran out
    assert await state.end("s1", "node_lost", 1_300, if_unclaimed=True)
    rec = await state.record("s1")
    assert rec is not None and rec.end_reason == "node_lost"
    assert await state.unrenewed(10_000) == []  # ended streams leave the claim index
    assert (await state.record("s2")).state == "active"  # type: ignore[union-attr]
