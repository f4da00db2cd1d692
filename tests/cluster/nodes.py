"""Real `livesight serve` nodes as subprocesses sharing one redis-server (tests/cluster/test_three_nodes.py,
bench/cluster.py): each with its own data dir, public port and internal (node-to-node) port."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

import livesight

BIN = Path(sys.executable).with_name("livesight")
SECRET = "test-cluster-secret-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Node:
    node_id: str
    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    internal_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, redis_url: str) -> None:
        args = [str(BIN), "serve", "--port", str(self.port), "--internal-port", str(self.internal_port)]
        args += ["--redis", redis_url, "--node-id", self.node_id]
        self.log = (self.data_dir / "serve.log").open("ab")
        self.proc = subprocess.Popen(args, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, f"{self.node_id} exited: {self.tail()}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise AssertionError(f"{self.node_id} not ready: {self.tail()}")

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def terminate(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def tail(self, lines: int = 40) -> str:
        path = self.data_dir / "serve.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None
        if self.log is not None:
            self.log.close()


def node_env(data_dir: Path, **settings: object) -> dict[str, str]:
    """The environment of a node: LIVESIGHT_* from `settings` (lists and dicts as JSON)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVESIGHT_")}
    env.update({"LIVESIGHT_DATA_DIR": str(data_dir), "LIVESIGHT_LOG_FORMAT": "text"})
    src = str(Path(livesight.__file__).parents[1])  # the nodes run the code under test, not another install
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    env["LIVESIGHT_CLUSTER_SECRET"] = SECRET
    env["LIVESIGHT_PRELOAD_BUILTIN_MODELS"] = "false"
    env["LIVESIGHT_DISCOVER_LOCAL_ENGINES"] = "false"
    env["LIVESIGHT_OUTBOUND_ALLOW_CIDRS"] = '["127.0.0.0/8", "10.77.0.0/24"]'
    for name, value in settings.items():
        text = json.dumps(value) if isinstance(value, list | dict | bool) else str(value)
        env[f"LIVESIGHT_{name.upper()}"] = text
    return env


@contextlib.contextmanager
def run_nodes(root: Path, redis_url: str, names: list[str], **settings: object) -> Iterator[dict[str, Node]]:
    """Start every node (in parallel), wait until each is ready, stop them all afterwards."""
    nodes = {}
    for name in names:
        data = root / name
        data.mkdir(parents=True, exist_ok=True)
        nodes[name] = Node(name, data, node_env(data, **settings))
    try:
        for node in nodes.values():
            node.start(redis_url)
        for node in nodes.values():
            node.wait_ready()
        yield nodes
    finally:
        for node in nodes.values():
            node.stop()
