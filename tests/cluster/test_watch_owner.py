"""Watches run on the owner of their stream (docs/scale-out.md "Watches"): three real `livesight serve`
processes on one redis-server, a pulled file source as the stream (no WebRTC, so no netns), the fake
vLLM upstream. A watch created through a non-owner runs on the owner (only the owner counts it in
`livesight_watches_active`, its results carry the owner's frames); results, SSE and the list through a
third node; pause and delete through another; another key's watch is 404 on every node; a SIGKILLed
owner ends its watch `node_lost`, seen from both other nodes. Every wait is on observable state."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_py

from livesight.api.internal import _until_disconnect
from livesight.store.keys import SQLiteKeyStore
from livesight.store.redis_state import ClusterState, SharedWatch
from tests.cluster.nodes import Node, run_nodes
from tests.support.fake_upstream import MODEL, run_fake_upstream
from tests.support.polling import wait_for
from tests.support.redis_server import RedisServer
from tests.support.video import write_video

TICK_MS = 100
LEASE_MS = 2000


def _get(node: Node, key: str, path: str) -> httpx.Response:
    with node.client(key) as c:
        return c.get(path)


def _send(node: Node, key: str, method: str, path: str, body: Any = None) -> httpx.Response:
    with node.client(key) as c:
        return c.request(method, path, json=body)


def _watch(node: Node, key: str, watch_id: str) -> dict[str, Any]:
    r = _get(node, key, f"/v1/watches/{watch_id}")
    assert r.status_code == 200, (node.node_id, r.text)
    return dict(r.json())


def _lost_yet(node: Node, key: str, watch_id: str) -> bool:
    r = _get(node, key, f"/v1/watches/{watch_id}")
    assert r.status_code in (200, 503), r.text
    return r.status_code == 200 and r.json()["end_reason"] == "node_lost"


def _active_watches(node: Node) -> float:
    text = httpx.get(f"{node.base_url}/metrics", timeout=10).text
    lines = [line for line in text.splitlines() if line.startswith("livesight_watches_active ")]
    return float(lines[0].split()[1])


def _watch_body(sid: str) -> dict[str, Any]:
    parts = [{"type": "text", "text": "anyone there?"}]
    parts.append({"type": "image_url", "image_url": {"url": f"ovs://streams/{sid}?frame_index=-1"}})
    request = {"model": "up", "messages": [{"role": "user", "content": parts}]}
    return {"request": request, "interval_ms": 250, "only_on_new_frames": False}


def _sse_events(node: Node, key: str, watch_id: str, until: str, count: int = 1) -> list[tuple[str, Any]]:
    """Read the watch's SSE on `node` until `count` events named `until` arrived."""
    events: list[tuple[str, Any]] = []
    name = ""
    with (
        node.client(key) as c,
        c.stream("GET", f"/v1/watches/{watch_id}/events", timeout=30) as r,
    ):
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[len("data: ") :])))
                if sum(1 for n, _ in events if n == until) >= count:
                    return events
    return events


def test_watches_run_on_the_owner_of_their_stream(tmp_path: Path, redis: RedisServer) -> None:
    media = tmp_path / "media"
    media.mkdir()
    write_video(media / "clip.mp4", frames=40, fps=10, size=(192, 144))
    (tmp_path / "a").mkdir()
    keys = SQLiteKeyStore(tmp_path / "a" / "livesight.db")
    admin_key, key = keys.create("admin")
    _, other_key = keys.create("someone else")
    keys.close()
    db = redis_py.Redis.from_url(redis.url, decode_responses=True)
    with (
        run_fake_upstream() as fake,
        run_nodes(
            tmp_path,
            redis.url,
            ["a", "b", "c"],
            cluster_tick_ms=TICK_MS,
            owner_lease_ms=LEASE_MS,
            admin_key_ids=[admin_key.id],
            stream_ttl_seconds=600,
            rate_limit_rps=100,
            source_file_dir=str(media),
            models=[{"id": "up", "base_url": fake.base_url, "upstream_model": MODEL, "profile": "vllm"}],
            builtin_models=[],
        ) as nodes,
    ):
        for node in nodes.values():  # the keys made in a's SQLite reach the others through Redis
            wait_for(lambda n=node: _get(n, other_key, "/v1/watches").status_code == 200, timeout=15, what="keys")
        wait_for(
            lambda: len([n for n in _get(nodes["a"], key, "/v1/cluster").json()["nodes"] if n["alive"]]) == 3,
            timeout=15,
            what="three live nodes",
        )
        created = _send(nodes["a"], key, "POST", "/v1/streams", {"source": {"type": "file", "url": "clip.mp4"}})
        assert created.status_code == 201, created.text
        sid = created.json()["id"]
        owner = nodes[db.hget(f"ls:s:{sid}", "node")]
        via, third = (n for n in nodes.values() if n is not owner)
        for node in nodes.values():
            wait_for(
                lambda n=node: _get(n, key, f"/v1/streams/{sid}").json().get("last_frame_index") is not None,
                timeout=30,
                what=f"frames of the stream seen on {node.node_id}",
            )

        # --- created through a non-owner, it runs on the owner
        made = _send(via, key, "POST", "/v1/watches", _watch_body(sid))
        assert made.status_code == 201, made.text
        watch_id = made.json()["id"]
        assert db.hget(f"ls:w:{watch_id}", "node") == owner.node_id
        assert db.hget(f"ls:wo:{admin_key.owner}", watch_id) == owner.node_id
        assert _active_watches(owner) == 1 and _active_watches(via) == 0 and _active_watches(third) == 0
        wait_for(lambda: _watch(third, key, watch_id)["last_seq"] >= 2, timeout=30, what="two results")

        # --- its results through a third node: the owner's, the stream's frames
        page = _get(third, key, f"/v1/watches/{watch_id}/results").json()
        assert page["data"] and page["last_seq"] >= 2
        first = page["data"][0]
        assert first["error"] is None, first
        assert first["frames"] and all(f["stream_id"] == sid for f in first["frames"])
        seen = json.loads(first["output"])
        assert seen["images"] and seen["uuids"][0].startswith(f"{sid}:")  # the owner's frame ids
        on_owner = _get(owner, key, f"/v1/watches/{watch_id}/results").json()["data"]
        assert [r["seq"] for r in on_owner][: len(page["data"])] == [r["seq"] for r in page["data"]]
        assert on_owner[0] == first  # one watch, one set of results: the owner's

        events = _sse_events(third, key, watch_id, "result", count=2)
        assert [n for n, _ in events][:2] == ["result", "result"]
        assert events[1][1]["seq"] == events[0][1]["seq"] + 1

        # --- the list on any node: the key's watches cluster-wide; another key sees none of them
        for node in nodes.values():
            listed = [w["id"] for w in _get(node, key, "/v1/watches").json()["data"]]
            assert listed == [watch_id], node.node_id
            assert _get(node, other_key, "/v1/watches").json()["data"] == []
            for method, path in [("GET", ""), ("GET", "/results"), ("GET", "/events"), ("DELETE", "")]:
                refused = _send(node, other_key, method, f"/v1/watches/{watch_id}{path}")
                assert refused.status_code == 404, (node.node_id, method, path, refused.text)

        # --- paused through one node, seen on the owner; deleted through another, seen everywhere
        paused = _send(via, key, "PATCH", f"/v1/watches/{watch_id}", {"state": "paused"})
        assert paused.status_code == 200 and paused.json()["state"] == "paused", paused.text
        assert _watch(owner, key, watch_id)["state"] == "paused"
        deleted = _send(third, key, "DELETE", f"/v1/watches/{watch_id}")
        assert deleted.status_code == 200 and deleted.json()["end_reason"] == "deleted", deleted.text
        for node in nodes.values():
            assert _watch(node, key, watch_id)["end_reason"] == "deleted"
        assert _sse_events(via, key, watch_id, "end")[-1][0] == "end"
        assert _active_watches(owner) == 0

        # --- a killed owner: its watch ends node_lost, seen from both other nodes
        second = _send(third, key, "POST", "/v1/watches", _watch_body(sid)).json()["id"]
        assert db.hget(f"ls:w:{second}", "node") == owner.node_id
        wait_for(lambda: _watch(via, key, second)["last_seq"] >= 1, timeout=30, what="the second watch runs")
        wait_for(  # its owner publishes its view each tick: what the others answer once it is lost
            lambda: json.loads(db.hget(f"ls:w:{second}", "snap"))["last_seq"] >= 1, timeout=10, what="the snapshot"
        )
        owner.kill()
        for node in (via, third):  # 503 (retry) while its last heartbeat is fresh: it may be slow, not gone
            wait_for(
                lambda n=node: _lost_yet(n, key, second),
                timeout=LEASE_MS / 1000 + 10,
                what=f"the watch node_lost on {node.node_id}",
            )
            lost = _watch(node, key, second)
            assert lost["state"] == "ended" and lost["ended_at_ms"] is not None
            results = _get(node, key, f"/v1/watches/{second}/results").json()
            assert results["data"] == [] and results["last_seq"] >= 1  # its results went with its node
            assert _sse_events(node, key, second, "end")[-1][1]["end_reason"] == "node_lost"
            changed = _send(node, key, "PATCH", f"/v1/watches/{second}", {"state": "paused"})
            assert changed.status_code == 400, changed.text
            assert _send(node, key, "DELETE", f"/v1/watches/{second}").json()["end_reason"] == "node_lost"
            assert _get(node, other_key, f"/v1/watches/{second}").status_code == 404
            shown = {w["id"]: w for w in _get(node, key, "/v1/watches").json()["data"]}
            assert shown[second]["end_reason"] == "node_lost" and shown[watch_id]["end_reason"] == "deleted"
        for node in (via, third):  # and its stream ended node_lost with it
            wait_for(
                lambda n=node: _get(n, key, f"/v1/streams/{sid}").json()["end_reason"] == "node_lost",
                timeout=LEASE_MS / 1000 + 10,
                what=f"the stream node_lost on {node.node_id}",
            )
    db.close()


async def test_watch_records_in_redis(state: ClusterState) -> None:
    snap: dict[str, object] = {"id": "watch_1", "state": "active", "last_seq": 0}
    await state.place_watch(SharedWatch("watch_1", "n1", "key_a", snap))
    await state.place_watch(SharedWatch("watch_2", "n2", "key_a", {**snap, "id": "watch_2"}))
    assert await state.watch_node("watch_1") == "n1"
    assert await state.watch_node("watch_x") is None
    assert await state.watch_index("key_a") == {"watch_1": "n1", "watch_2": "n2"}
    assert await state.watch_index("key_b") == {}
    ended = {**snap, "state": "ended", "last_seq": 3}
    await state.publish_watches([SharedWatch("watch_1", "n1", "key_a", ended)], ended_kept_ms=60_000)
    shared = await state.watch("watch_1")
    assert shared is not None and shared.snap == ended and shared.owner == "key_a"
    assert 0 < await state.redis.pttl("ls:w:watch_1") <= 60_000  # an ended watch's record lapses
    assert await state.redis.pttl("ls:w:watch_2") == -1  # an active one's does not
    await state.lapse_watch("watch_2", 5_000)
    await state.lapse_watch("watch_2", 60_000)  # the first lapse stands
    assert 0 < await state.redis.pttl("ls:w:watch_2") <= 5_000
    await state.forget_watches([("watch_1", "key_a")])
    assert await state.watch("watch_1") is None
    assert await state.watch_index("key_a") == {"watch_2": "n2"}


async def test_a_relayed_answer_ends_when_its_client_leaves() -> None:
    messages = [{"type": "http.request", "body": b"", "more_body": False}, {"type": "http.disconnect"}]
    pumped = asyncio.Event()

    async def receive() -> dict[str, object]:
        await pumped.wait()
        return messages.pop(0)

    async def endless() -> None:
        pumped.set()
        await asyncio.Event().wait()  # an SSE answer that would never end

    await asyncio.wait_for(_until_disconnect(endless(), receive), 5)  # returns: the client left

    async def fails() -> None:
        raise RuntimeError("the owner closed")

    never = asyncio.Event()

    async def quiet() -> dict[str, object]:
        await never.wait()
        return {}

    with pytest.raises(RuntimeError, match="owner closed"):  # the relay's error is not swallowed
        await _until_disconnect(fails(), quiet)
