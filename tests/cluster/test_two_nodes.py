"""Two livesight nodes (two real servers on port 0, in this process) sharing one real redis-server.

Each node has its own data dir and SQLite keys; they share only Redis. One FakeClock drives both
nodes' leases (the cluster tick itself runs on real time, every 50 ms here).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis as redis_py

from livesight.core.clock import FakeClock
from livesight.store.keys import SQLiteKeyStore
from livesight.store.redis_state import ClusterState
from livesight.streams.cluster import ClusterDirectory
from tests.support.frames import push_frames
from tests.support.polling import wait_for
from tests.support.redis_server import RedisServer
from tests.support.server import LiveServer, run_server

TICK_MS = 50
LEASE_MS = 1000


@dataclass
class Pair:
    a: LiveServer
    b: LiveServer
    clock: FakeClock
    redis: RedisServer
    admin: str

    def status(self, node: LiveServer, key: str, sid: str) -> httpx.Response:
        with node.client(key) as c:
            return c.get(f"/v1/streams/{sid}")


@pytest.fixture
def pair(tmp_path: Path, redis: RedisServer) -> Iterator[Pair]:
    clock = FakeClock()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    keys = SQLiteKeyStore(tmp_path / "a" / "keys.db")
    admin_key, admin = keys.create("admin")
    keys.close()
    common = {
        "redis_url": redis.url,
        "cluster_tick_ms": TICK_MS,
        "owner_lease_ms": LEASE_MS,
        "admin_key_ids": [admin_key.id],
        "max_active_streams_per_key": 2,
        "rate_limit_rps": 1,
        "max_active_watches_per_key": 2,
        "preload_builtin_models": False,  # no OCR model loading to wait for at shutdown
    }
    with (
        run_server(tmp_path / "a", clock=clock, node_id="node-a", **common) as a,
        run_server(tmp_path / "b", clock=clock, node_id="node-b", **common) as b,
    ):
        yield Pair(a, b, clock, redis, admin)


def _create(node: LiveServer, key: str) -> str:
    with node.client(key) as c:
        r = c.post("/v1/streams")
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _known_on(node: LiveServer, key: str) -> None:
    """Wait until `node` has the key from the shared cache (a key made on the other node)."""
    with node.client(key) as c:
        wait_for(lambda: c.get("/v1/streams").status_code == 200, what="the key to reach the other node")


def test_a_stream_created_on_a_is_visible_on_b_and_scoped_to_its_owner(pair: Pair) -> None:
    mine, other = pair.a.new_key(), pair.b.new_key()
    sid = _create(pair.a, mine)
    _known_on(pair.b, mine)
    seen = wait_for(lambda: (r := pair.status(pair.b, mine, sid)).status_code == 200 and r, what="B sees A's stream")
    assert seen.json()["state"] == "active"
    _known_on(pair.a, other)
    assert pair.status(pair.b, other, sid).status_code == 404
    assert pair.status(pair.a, other, sid).status_code == 404
    with pair.b.client(mine) as c:
        assert [s["id"] for s in c.get("/v1/streams").json()["data"]] == [sid]
        assert c.delete(f"/v1/streams/{sid}").status_code == 200
    ended = wait_for(lambda: (r := pair.status(pair.a, mine, sid)).json()["state"] == "ended" and r, what="end on A")
    assert ended.json()["end_reason"] == "deleted"
    wait_for(lambda: not pair.a.components.registry.all_active(), what="A to free the stream it owned")


def test_the_other_node_shows_the_owners_live_facts(pair: Pair) -> None:
    key = pair.a.new_key()
    sid = _create(pair.a, key)
    _known_on(pair.b, key)
    push_frames(pair.a, sid, [0, 100, 200])
    seen = wait_for(
        lambda: (r := pair.status(pair.b, key, sid)).status_code == 200 and r.json()["retained_frame_count"] == 3 and r,
        what="B to show A's frames",
    )
    assert seen.json()["last_frame_index"] == pair.status(pair.a, key, sid).json()["last_frame_index"]
    assert seen.json()["width"] == 640


def test_a_lease_reaped_on_its_deadline_ends_on_both_nodes(pair: Pair) -> None:
    key = pair.a.new_key()
    sid = _create(pair.a, key)
    _known_on(pair.b, key)
    wait_for(lambda: pair.status(pair.b, key, sid).status_code == 200, what="B sees it")
    with pair.b.client(key) as c:
        assert c.post(f"/v1/streams/{sid}/keepalive").status_code == 200  # renewed through the non-owner
    pair.clock.advance(200_000)
    time.sleep(0.3)
    assert pair.status(pair.a, key, sid).json()["state"] == "active"  # B's keepalive moved the deadline
    pair.clock.advance(200_000)
    for node in (pair.a, pair.b):
        r = wait_for(lambda n=node: (r := pair.status(n, key, sid)).json()["state"] == "ended" and r, what="reaped")
        assert r.json()["end_reason"] == "expired"
    assert not pair.a.components.registry.all_active()


def test_a_key_revoked_on_one_node_is_refused_on_the_other_within_a_second(pair: Pair) -> None:
    key, plain = pair.a.keys.create("to revoke")
    _known_on(pair.b, plain)
    pair.a.keys.revoke(key.id)  # as `livesight keys revoke` on node A would (its SQLite file)
    started = time.monotonic()
    with pair.b.client(plain) as c:
        wait_for(lambda: c.get("/v1/streams").status_code == 401, timeout=2.0, what="B to refuse the key")
    assert time.monotonic() - started < 2.0
    other = pair.b.new_key()
    _known_on(pair.a, other)
    pair.b.call(pair.b.components.keys.revoke, other)  # through B's own store: published at once
    with pair.a.client(other) as c:
        wait_for(lambda: c.get("/v1/streams").status_code == 401, timeout=2.0, what="A to refuse B's key")


def test_limits_are_counted_across_both_nodes(pair: Pair) -> None:
    key = pair.a.new_key()
    _known_on(pair.b, key)
    _create(pair.a, key)
    _create(pair.b, key)
    for node in (pair.a, pair.b):
        with node.client(key) as c:
            r = c.post("/v1/streams")
        assert r.status_code == 429 and "across the cluster" in r.text
    body = {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}
    codes = []
    for node in (pair.a, pair.b):
        with node.client(key) as c:
            codes.append(c.post("/v1/chat/completions", json=body).status_code)
    assert codes[0] != 429 and codes[1] == 429  # 1 request/s for the key, whichever node it reaches


def _watch(node: LiveServer, key: str, sid: str) -> httpx.Response:
    content = [{"type": "image_url", "image_url": {"url": f"ovs://streams/{sid}?frame_index=-1"}}]
    request = {"model": "livesight/ocr", "messages": [{"role": "user", "content": content}]}
    with node.client(key) as c:  # waits for a new frame: no model call while the test runs
        return c.post("/v1/watches", json={"request": request, "interval_ms": 1000, "only_on_new_frames": True})


def test_the_watch_limit_is_counted_across_both_nodes(pair: Pair) -> None:
    key = pair.a.new_key()
    _known_on(pair.b, key)
    on_a, on_b = _create(pair.a, key), _create(pair.b, key)
    assert _watch(pair.a, key, on_a).status_code == 201
    assert _watch(pair.b, key, on_b).status_code == 201
    counts = redis_py.Redis.from_url(pair.redis.url, decode_responses=True)
    wait_for(  # each node's count is in Redis (admission writes it; a tick republishes it)
        lambda: sum(int(v) for n in ("node-a", "node-b") for v in counts.hvals(f"ls:wc:{n}")) == 2,
        what="both nodes' watch counts in Redis",
    )
    for node, sid in ((pair.a, on_a), (pair.b, on_b)):
        r = _watch(node, key, sid)
        assert r.status_code == 429 and "across the cluster" in r.text, r.text
    with pair.a.client(key) as c:
        (first,) = c.get("/v1/watches").json()["data"]
        assert c.delete(f"/v1/watches/{first['id']}").status_code == 200
    wait_for(lambda: _watch(pair.b, key, on_b).status_code == 201, what="B to see A's watch count drop")


def test_a_redis_restart_of_a_few_seconds_ends_no_stream(pair: Pair) -> None:
    key = pair.a.new_key()
    sid = _create(pair.a, key)
    _known_on(pair.b, key)
    wait_for(lambda: pair.status(pair.b, key, sid).status_code == 200, what="B sees it")
    pair.redis.stop()
    with pair.a.client() as c:
        wait_for(lambda: c.get("/readyz").status_code == 503, what="/readyz to fail without Redis")
        with pair.a.client(key) as ck:
            assert ck.post("/v1/streams").status_code == 503  # no change without the shared state
        time.sleep(2)
        pair.redis.start()  # empty: no persistence
        wait_for(lambda: c.get("/readyz").status_code == 200, what="/readyz back")
    shared = pair.a.components.cluster
    wait_for(lambda: shared.serving(sid), what="A to serve the stream again")
    for node in (pair.a, pair.b):
        r = wait_for(lambda n=node: (r := pair.status(n, key, sid)).status_code == 200 and r, what="restored")
        assert r.json()["state"] == "active"
    with pair.b.client() as c:  # B sees Redis back on its own tick: until then its changes are a 503
        wait_for(lambda: c.get("/readyz").status_code == 200, what="/readyz back on B")
    with pair.b.client(key) as c:
        assert c.post(f"/v1/streams/{sid}/keepalive").status_code == 200
    assert [s.id for s in pair.a.components.registry.all_active()] == [sid]


def test_a_second_owner_fences_the_first(pair: Pair) -> None:
    key = pair.a.new_key()
    sid = _create(pair.a, key)
    shared = pair.a.components.cluster
    assert shared.serving(sid)

    async def take_over() -> int:
        state = ClusterState.from_url(pair.redis.url)
        try:
            await state.redis.delete(f"ls:claim:{sid}")  # as if A's claim had lapsed
            return await state.claim(sid, "node-b", claim_ttl_ms=60_000, now_ms=pair.clock.now_ms())
        finally:
            await state.aclose()

    # A renews its claim every tick, and a renewal may land between the delete and the claim: try again
    epoch = 0
    for _ in range(20):
        epoch = asyncio.run(take_over())
        if epoch:
            break
    assert epoch >= 2  # a newer epoch than A's first
    wait_for(lambda: not shared.serving(sid), what="A to stop serving a stream another node claimed")
    assert not pair.a.components.registry.all_active()
    assert shared.ingest_target(sid) is None  # A refuses a publisher for it now
    assert pair.status(pair.a, key, sid).json()["state"] == "active"  # the stream lives on, node-b's


def test_the_cluster_endpoint_lists_nodes_to_admins_only(pair: Pair) -> None:
    key = pair.a.new_key()
    _create(pair.a, key)
    with pair.a.client(pair.admin) as c:

        def both() -> dict[str, object] | None:
            body = c.get("/v1/cluster").json()
            nodes = {n["node_id"]: n for n in body["nodes"]}
            return body if set(nodes) == {"node-a", "node-b"} and nodes["node-a"]["streams"] == 1 else None

        body = wait_for(both, what="both nodes in /v1/cluster")
    assert body["node_id"] == "node-a" and body["redis"] is True
    assert all(n["alive"] for n in body["nodes"])
    with pair.a.client(key) as c:
        r = c.get("/v1/cluster")
        assert r.status_code == 403 and r.json()["detail"]
    with pair.a.client() as c:
        assert c.get("/v1/cluster").status_code == 401
        assert "/v1/cluster" in c.get("/openapi.json").json()["paths"]


def test_a_node_that_loses_redis_stops_serving_and_its_streams_end_as_node_lost(pair: Pair) -> None:
    key = pair.a.new_key()
    _known_on(pair.b, key)
    on_a, on_b = _create(pair.a, key), _create(pair.b, key)
    shared_b = pair.b.components.cluster
    assert shared_b.serving(on_b)

    reachable = shared_b.state
    shared_b.state = ClusterState.from_url("redis://127.0.0.1:9/0")  # B loses Redis (nothing listens there)
    try:
        _lose_b(pair, shared_b, key, on_a, on_b)
    finally:
        shared_b.state = reachable


def _lose_b(pair: Pair, shared_b: ClusterDirectory, key: str, on_a: str, on_b: str) -> None:
    wait_for(lambda: not shared_b.serving(on_b), timeout=5, what="B to stop serving once its claim lapsed")
    assert shared_b.ingest_target(on_b) is None
    assert shared_b.window(next(s for s in shared_b.local.all_active() if s.id == on_b)) is None
    with pair.b.client() as c:
        assert c.get("/readyz").status_code == 503
    pair.clock.advance(LEASE_MS + 1)
    ended = wait_for(
        lambda: (r := pair.status(pair.a, key, on_b)).json()["state"] == "ended" and r, what="A to end B's stream"
    )
    assert ended.json()["end_reason"] == "node_lost"
    assert pair.status(pair.a, key, on_a).json()["state"] == "active"  # A's own stream is untouched
