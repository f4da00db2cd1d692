"""A node on Redis's unix socket (`unix://…`): streams and the `limits` rate limiter both reach it."""

from __future__ import annotations

from pathlib import Path

import redis as redis_py

from livesight.core.clock import FakeClock
from tests.support.redis_server import RedisServer
from tests.support.server import run_server


def test_a_node_on_the_unix_socket(tmp_path: Path, redis: RedisServer) -> None:
    settings = {"redis_url": redis.socket_url, "node_id": "sock", "rate_limit_rps": 1, "preload_builtin_models": False}
    with run_server(tmp_path, clock=FakeClock(), **settings) as node:
        key = node.new_key()
        with node.client(key) as c:
            assert c.get("/readyz").status_code == 200
            assert c.post("/v1/streams").status_code == 201
            body = {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}
            assert c.post("/v1/chat/completions", json=body).status_code != 429
            r = c.post("/v1/chat/completions", json=body)
            assert r.status_code == 429 and r.headers["x-ratelimit-remaining"] == "0"
    client = redis_py.Redis.from_url(redis.url)
    try:  # counted in Redis, not in the fallback bucket
        assert client.keys("ls:rl*")
    finally:
        client.close()
