"""Placement, drain and ghosts in `ClusterDirectory` (real redis-server, ticks by hand), and the
internal port's door (api/internal.py) on a real node process."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from livesight.buffer.pool import BufferPool
from livesight.core.clock import FakeClock
from livesight.store.keys import SQLiteKeyStore
from livesight.store.redis_state import ClusterState, SharedStream
from livesight.streams.cluster import ClusterDirectory
from livesight.streams.cluster_parts import ClusterConfig
from livesight.streams.registry import RegistryLimits, StreamRegistry
from tests.cluster.nodes import SECRET, run_nodes
from tests.support.redis_server import RedisServer

LEASE_MS = 1000


def _directory(state: ClusterState, clock: FakeClock, node: str = "n1", capacity: int = 10) -> ClusterDirectory:
    local = StreamRegistry(clock, BufferPool(clock), RegistryLimits(expire_locally=False))
    config = ClusterConfig(
        node, claim_ttl_ms=LEASE_MS, tick_ms=50, grace_ms=LEASE_MS, capacity=capacity, internal_url=f"http://{node}"
    )
    return ClusterDirectory(local, state, config, clock)


async def _beat(state: ClusterState, clock: FakeClock, node: str, **info: object) -> None:
    base: dict[str, object] = {"capacity": 10, "draining": False, "internal_url": f"http://{node}", "streams": 0}
    await state.heartbeat(node, clock.now_ms(), {**base, **info})


async def test_place_takes_the_least_loaded_live_node_and_never_a_draining_one(state: ClusterState) -> None:
    clock = FakeClock()
    here = _directory(state, clock)
    await here.tick()
    await _beat(state, clock, "n2", streams=3)
    await _beat(state, clock, "n3", streams=1)
    await _beat(state, clock, "n4", streams=0, draining=True)
    await _beat(state, clock, "n5", streams=0, internal_url="")  # no internal port: cannot take forwarded creates
    for _ in range(2):
        here.create("key_a")
    await here.saved()
    assert await here.place() == "n3"  # n1 holds 2, n2 3, n3 1; n4 drains; n5 is unreachable
    await _beat(state, clock, "n3", streams=5)
    assert await here.place() == "n1"  # ties and lower loads stay here
    clock.advance(200)  # n2..n5 miss 3 ticks: not alive
    await here.tick()
    assert await here.place() == "n1"
    await here.drain()
    await _beat(state, clock, "n2", streams=9)
    assert await here.place() == "n2"  # draining: never here while another node has room
    beats = {b.node: b for b in await state.nodes()}
    assert beats["n1"].info["draining"] is True  # said at once, not at the next tick


async def test_a_full_node_places_elsewhere(state: ClusterState) -> None:
    clock = FakeClock()
    here = _directory(state, clock, capacity=1)
    await here.tick()
    here.create("key_a")
    await here.saved()
    await _beat(state, clock, "n2", streams=8)  # 8 of 10: fuller in ratio than n1's 1 of 1
    assert await here.place() == "n2"


async def test_a_restarted_node_ends_its_previous_lifes_streams_at_once(state: ClusterState) -> None:
    clock = FakeClock()
    sid = str(uuid.uuid4())
    now = clock.now_ms()
    record = SharedStream(sid, "key_a", now, 300, now + 300_000, "active", "n1", 0)
    await state.create(record, claim_ttl_ms=60_000, limit=9, now_ms=now)  # its claim is still held
    clock.advance(10)
    restarted = _directory(state, clock)  # same node id, a new process: the stream's frames died with the old
    rec = None
    for _ in range(50):  # the first tick finds it; the end is queued behind it
        await restarted.tick()
        rec = await state.record(sid)
        if rec is not None and rec.state == "ended":
            break
    assert rec is not None and rec.state == "ended" and rec.end_reason == "node_lost"
    assert restarted.node_info()["streams"] == 0


def test_the_internal_port_wants_the_secret_and_the_public_port_hides_it(tmp_path: Path, redis: RedisServer) -> None:
    (tmp_path / "a").mkdir()
    keys = SQLiteKeyStore(tmp_path / "a" / "livesight.db")
    _, key = keys.create("k")
    keys.close()
    with run_nodes(tmp_path, redis.url, ["a"], builtin_models=[]) as nodes:
        a = nodes["a"]
        internal = f"http://127.0.0.1:{a.internal_port}"
        auth = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{internal}/internal/v1/streams", headers=auth).status_code == 401  # no secret
        wrong = {**auth, "x-livesight-cluster-secret": "x" * len(SECRET)}
        assert httpx.get(f"{internal}/internal/v1/streams", headers=wrong).status_code == 401
        right = {**auth, "x-livesight-cluster-secret": SECRET}
        assert httpx.get(f"{internal}/internal/v1/streams", headers=right).status_code == 200
        assert httpx.get(f"{internal}/v1/streams", headers=right).status_code == 404  # only /internal/...
        no_key = httpx.get(f"{internal}/internal/v1/streams", headers={"x-livesight-cluster-secret": SECRET})
        assert no_key.status_code == 401  # the API key is still the owner's check
        sid = httpx.post(f"{a.base_url}/v1/streams", headers=auth).json()["id"]
        hidden = httpx.get(f"{a.base_url}/_cluster/window/{sid}", params={"owner": "x"}, headers=right)
        assert hidden.status_code == 404  # the frame endpoints are not on the public port
