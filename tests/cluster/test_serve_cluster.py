"""`livesight serve --redis URL --node-id ID` as a user runs it: joins, serves, leaves on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
import redis as redis_py

from tests.support.polling import wait_for
from tests.support.redis_server import RedisServer
from tests.test_cli import BIN, free_port, wait_ready


@pytest.mark.timeout(90)
def test_serve_joins_the_cluster_and_leaves_it_on_sigterm(tmp_path: Path, redis: RedisServer) -> None:
    port = free_port()
    env = {**os.environ, "LIVESIGHT_DATA_DIR": str(tmp_path), "LIVESIGHT_LOG_FORMAT": "text"}
    env["LIVESIGHT_PRELOAD_BUILTIN_MODELS"] = "false"
    args = [str(BIN), "serve", "--port", str(port), "--redis", redis.url, "--node-id", "cli-node"]
    proc = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    client = redis_py.Redis.from_url(redis.url, decode_responses=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        assert client.hexists("ls:nodes", "cli-node")
        assert proc.stderr is not None
        banner = ""
        while "export LIVESIGHT_API_KEY=" not in banner:
            banner += proc.stderr.readline()
        key = banner.split("LIVESIGHT_API_KEY=")[1].split()[0]
        r = httpx.post(f"http://127.0.0.1:{port}/v1/streams", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 201
        sid = r.json()["id"]
        assert client.hget(f"ls:s:{sid}", "node") == "cli-node"
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=20)[1]
        assert proc.returncode in (0, -signal.SIGTERM) and "Traceback" not in rest
        wait_for(lambda: client.hget(f"ls:s:{sid}", "state") == "ended", what="its stream ended cluster-wide")
        assert client.hget(f"ls:s:{sid}", "end_reason") == "deleted"
        assert not client.hexists("ls:nodes", "cli-node")  # it left the node list
    finally:
        client.close()
        if proc.poll() is None:
            proc.kill()
