"""Cluster state on Redis: what it adds to stream create/keepalive, and how fast changes cross nodes.

    PYTHONPATH=src .venv/bin/python -m bench.cluster [--requests 300] [--trials 20]

Starts its own redis-server on a free 127.0.0.1 port (tests/support/redis_server.py; no persistence)
and real servers on port 0 in this process with the real clock and default cluster settings
(`cluster_tick_ms` 500, key sync 250 ms). Reported:
- create and keepalive latency p50/p99 as a client sees it (sequential, one keep-alive connection),
  on one node without Redis and on node A of a two-node cluster (same run);
- revocation: a key revoked on A (in A's SQLite, as `livesight keys revoke` does; and through A's
  store, published at once) until B answers 401, polled every 5 ms: p50 and max over the trials;
- visibility: a stream created on A until B answers 200 for it: p50 and max;
- forwarding (two `livesight serve` processes with a cluster secret, tests/cluster/nodes.py): GET
  /streams/{id} and keepalive answered by the stream's owner (local) and by the other node (forwarded
  over the internal port), interleaved in one run: p50/p99 and the ratio of the p50s; and create with
  placement (every other stream lands on the other node, so half the creates are forwarded);
- watches on the owner (`--watches N`, same two processes, the fake vLLM upstream): N watches on B's
  streams created through A (forwarded to B, which runs them), then GET /watches/{id} on B (local)
  and on A (forwarded), and the list on B (its own) and on A (A's none plus B's, fanned out).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
from tests.cluster.nodes import Node, run_nodes
from tests.support.fake_upstream import MODEL, run_fake_upstream
from tests.support.redis_server import redis_server
from tests.support.server import LiveServer, run_server

from livesight.core.clock import SystemClock
from livesight.store.keys import SQLiteKeyStore


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def until(fn: Callable[[], bool], timeout_s: float = 10.0) -> float:
    """Milliseconds until fn() is true, polling every 5 ms."""
    started = time.perf_counter()
    while not fn():
        if time.perf_counter() - started > timeout_s:
            raise RuntimeError("timed out")
        time.sleep(0.005)
    return (time.perf_counter() - started) * 1000


def lifecycle(node: LiveServer, requests: int) -> dict[str, float]:
    """Create then keep alive `requests` streams (deleting each to stay under the per-key limit)."""
    key = node.new_key()
    creates: list[float] = []
    keepalives: list[float] = []
    with node.client(key) as c:
        c.get("/v1/streams")  # warm the connection and the key cache
        for _ in range(requests):
            started = time.perf_counter()
            r = c.post("/v1/streams")
            creates.append((time.perf_counter() - started) * 1000)
            sid = r.json()["id"]
            keepalives.append(timed(lambda sid=sid: c.post(f"/v1/streams/{sid}/keepalive").raise_for_status()))
            c.delete(f"/v1/streams/{sid}").raise_for_status()
    return {
        "create_p50_ms": round(pct(creates, 50), 2),
        "create_p99_ms": round(pct(creates, 99), 2),
        "keepalive_p50_ms": round(pct(keepalives, 50), 2),
        "keepalive_p99_ms": round(pct(keepalives, 99), 2),
    }


def refused_on(node: LiveServer, plain: str) -> Callable[[], bool]:
    def check() -> bool:
        with httpx.Client(base_url=node.base_url, headers={"Authorization": f"Bearer {plain}"}) as c:
            return c.get("/v1/streams").status_code == 401

    return check


def crossing(a: LiveServer, b: LiveServer, trials: int) -> dict[str, float]:
    sqlite_ms: list[float] = []
    store_ms: list[float] = []
    visible_ms: list[float] = []
    for i in range(trials):
        key, plain = a.keys.create(f"bench {i}")
        until(lambda plain=plain: not refused_on(b, plain)())
        if i % 2 == 0:
            a.keys.revoke(key.id)  # A's SQLite, as the CLI does: A's next key sync publishes it
            sqlite_ms.append(until(refused_on(b, plain)))
        else:
            a.call(a.components.keys.revoke, key.id)  # through A's store: published at once
            store_ms.append(until(refused_on(b, plain)))
    owner = a.new_key()
    with a.client(owner) as ca, b.client(owner) as cb:
        until(lambda: cb.get("/v1/streams").status_code == 200)
        for _ in range(trials):
            sid = ca.post("/v1/streams").json()["id"]
            visible_ms.append(until(lambda sid=sid: cb.get(f"/v1/streams/{sid}").status_code == 200))
            ca.delete(f"/v1/streams/{sid}")
    return {
        "revoke_via_sqlite_p50_ms": round(pct(sqlite_ms, 50)),
        "revoke_via_sqlite_max_ms": round(max(sqlite_ms)),
        "revoke_via_store_p50_ms": round(pct(store_ms, 50)),
        "revoke_via_store_max_ms": round(max(store_ms)),
        "visible_on_b_p50_ms": round(pct(visible_ms, 50)),
        "visible_on_b_max_ms": round(max(visible_ms)),
    }


@contextlib.contextmanager
def cluster(tmp: Path, url: str) -> Iterator[tuple[LiveServer, LiveServer]]:
    (tmp / "a").mkdir(parents=True)
    (tmp / "b").mkdir(parents=True)
    common = {"redis_url": url, "preload_builtin_models": False, "max_active_streams_per_key": 1000}
    with (
        run_server(tmp / "a", clock=SystemClock(), node_id="bench-a", **common) as a,
        run_server(tmp / "b", clock=SystemClock(), node_id="bench-b", **common) as b,
    ):
        yield a, b


def _stats(name: str, values: list[float]) -> dict[str, float]:
    return {f"{name}_p50_ms": round(pct(values, 50), 2), f"{name}_p99_ms": round(pct(values, 99), 2)}


def _watch_body(sid: str) -> dict[str, object]:
    parts = [{"type": "image_url", "image_url": {"url": f"ovs://streams/{sid}?frame_index=-1"}}]
    request = {"model": "up", "messages": [{"role": "user", "content": parts}]}
    return {"request": request, "interval_ms": 86_400_000}  # no frames, no model call: the API alone


def watches_across(ca: httpx.Client, cb: httpx.Client, on_b: list[str], count: int) -> dict[str, float]:
    """Watches on B's streams, created through A; each read on B (local) and on A (forwarded)."""
    creates, local, forwarded = [], [], []
    ids = []
    for sid in (on_b * (count // max(1, len(on_b)) + 1))[:count]:
        started = time.perf_counter()
        r = ca.post("/v1/watches", json=_watch_body(sid))
        creates.append((time.perf_counter() - started) * 1000)
        r.raise_for_status()
        ids.append(r.json()["id"])
    for watch_id in ids:
        local.append(timed(lambda w=watch_id: cb.get(f"/v1/watches/{w}").raise_for_status()))
        forwarded.append(timed(lambda w=watch_id: ca.get(f"/v1/watches/{w}").raise_for_status()))
    list_b, list_a = [], []
    for _ in range(50):
        list_b.append(timed(lambda: cb.get("/v1/watches").raise_for_status()))
        list_a.append(timed(lambda: ca.get("/v1/watches").raise_for_status()))
    assert len(ca.get("/v1/watches").json()["data"]) == len(ids)
    report = {
        **_stats("watch_create_forwarded", creates),
        **_stats("watch_get_local", local),
        **_stats("watch_get_forwarded", forwarded),
        **_stats("watch_list_own", list_b),
        **_stats("watch_list_fanned_out", list_a),
    }
    report["watches"] = len(ids)
    report["watch_get_forwarded_over_local_p50"] = round(pct(forwarded, 50) / pct(local, 50), 2)
    report["watch_list_fanned_out_over_own_p50"] = round(pct(list_a, 50) / pct(list_b, 50), 2)
    return report


def forwarding(tmp: Path, redis_url: str, requests: int, watches: int = 0) -> dict[str, float]:
    """Local vs forwarded GET and keepalive on two node processes, and create with placement."""
    (tmp / "a").mkdir(parents=True)
    keys = SQLiteKeyStore(tmp / "a" / "livesight.db")
    _, key = keys.create("bench")
    keys.close()
    settings: dict[str, object] = {"max_active_streams_per_key": 1000, "builtin_models": []}
    settings["max_active_watches_per_key"] = max(20, watches)
    with contextlib.ExitStack() as stack:
        if watches:  # a model the watches' requests name (no frames: it is never called)
            fake = stack.enter_context(run_fake_upstream())
            settings["models"] = [{"id": "up", "base_url": fake.base_url, "upstream_model": MODEL, "profile": "vllm"}]
        nodes = stack.enter_context(run_nodes(tmp, redis_url, ["a", "b"], **settings))
        a, b = nodes["a"], nodes["b"]
        with a.client(key) as ca, b.client(key) as cb:
            until(lambda: cb.get("/v1/streams").status_code == 200)
            creates: list[float] = []
            placed: dict[str, Node] = {}
            for _ in range(requests):
                started = time.perf_counter()
                r = ca.post("/v1/streams")
                creates.append((time.perf_counter() - started) * 1000)
                body = r.json()
                placed[body["id"]] = a if body["publish"]["url"].endswith(f":{a.port}") else b
            on_b = [sid for sid, node in placed.items() if node is b]
            local_get: list[float] = []
            forwarded_get: list[float] = []
            local_keep: list[float] = []
            forwarded_keep: list[float] = []
            for sid in on_b:  # owned by b: b answers locally, a forwards to b
                local_get.append(timed(lambda sid=sid: cb.get(f"/v1/streams/{sid}").raise_for_status()))
                forwarded_get.append(timed(lambda sid=sid: ca.get(f"/v1/streams/{sid}").raise_for_status()))
                local_keep.append(timed(lambda sid=sid: cb.post(f"/v1/streams/{sid}/keepalive").raise_for_status()))
                forwarded_keep.append(timed(lambda sid=sid: ca.post(f"/v1/streams/{sid}/keepalive").raise_for_status()))
            across = watches_across(ca, cb, on_b, watches) if watches else {}
    report = {
        **_stats("create_placed", creates),
        **_stats("get_local", local_get),
        **_stats("get_forwarded", forwarded_get),
        **_stats("keepalive_local", local_keep),
        **_stats("keepalive_forwarded", forwarded_keep),
    }
    report["placed_on_other_node"] = len(on_b)
    report["get_forwarded_over_local_p50"] = round(pct(forwarded_get, 50) / pct(local_get, 50), 2)
    report["keepalive_forwarded_over_local_p50"] = round(pct(forwarded_keep, 50) / pct(local_keep, 50), 2)
    return {**report, **across}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--watches", type=int, default=100, help="watches on the owner (0: skip)")
    parser.add_argument("--only-forwarding", action="store_true", help="skip the in-process parts")
    args = parser.parse_args()
    report: dict[str, object] = {"load_avg": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        if not args.only_forwarding:
            (tmp / "single").mkdir()
            with run_server(tmp / "single", clock=SystemClock(), preload_builtin_models=False) as single:
                report["one_node_no_redis"] = lifecycle(single, args.requests)
            (tmp / "redis").mkdir()
            with redis_server(tmp / "redis") as redis, cluster(tmp / "nodes", redis.url) as (a, b):
                report["cluster_node_a"] = lifecycle(a, args.requests)
                report["across_nodes"] = crossing(a, b, args.trials)
        (tmp / "redis2").mkdir()
        with redis_server(tmp / "redis2") as redis:
            report["forwarding"] = forwarding(tmp / "procs", redis.socket_url, args.requests, args.watches)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
