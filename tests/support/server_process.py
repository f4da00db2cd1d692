"""A real livesight server in a subprocess, for tests that measure the server process itself (RSS).

`python -m tests.support.server_process SPEC` starts `run_server` with the settings in the JSON SPEC
(`settings`, plus `frames`: how many distinct noise JPEGs of `width`×`height` to put in one stream),
prints one JSON line (`url`, `key`, `stream_id`, `pid`) and serves until its stdin closes.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import livesight

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    url: str
    key: str
    stream_id: str

    def rss_mb(self) -> float:
        """Resident memory of the server process, from /proc/<pid>/status VmRSS."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS in /proc status")


@contextlib.contextmanager
def server_process(spec: dict[str, Any], env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    # the code under test is the one this process imports (PYTHONPATH), plus this checkout's tests
    paths = [str(Path(livesight.__file__ or "").resolve().parents[1]), str(ROOT)]
    environment = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(paths)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.server_process", json.dumps(spec)],
        cwd=ROOT,
        env=environment,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"server process exited with {process.wait(10)}")
        info = json.loads(line)
        yield ServerProcess(process, info["url"], info["key"], info["stream_id"])
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _serve(spec: dict[str, Any]) -> None:
    import numpy as np
    import simplejpeg

    from livesight.core.frame import IngestFrame, JpegPayload
    from livesight.settings import ModelConfig
    from tests.support.server import run_server

    settings = dict(spec.get("settings", {}))
    settings["models"] = [ModelConfig(**m) for m in settings.get("models", [])]
    width, height = int(spec.get("width", 640)), int(spec.get("height", 360))
    rng = np.random.default_rng(0)
    jpegs = [
        bytes(simplejpeg.encode_jpeg(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), quality=80))
        for _ in range(int(spec.get("frames", 1)))
    ]
    with tempfile.TemporaryDirectory() as tmp, run_server(Path(tmp), **settings) as server:
        key = server.new_key()
        with server.client(key) as client:
            stream_id = client.post("/v1/streams").json()["id"]

        def push() -> None:
            target = server.components.registry.ingest_target(stream_id)
            assert target is not None
            for i, jpeg in enumerate(jpegs):
                server.clock.advance(100)
                target.push_frame(IngestFrame("memory", float(i * 100), width, height, JpegPayload(jpeg)))

        server.call(push)
        info = {"url": server.base_url, "key": key, "stream_id": stream_id, "pid": os.getpid()}
        print(json.dumps(info), flush=True)
        sys.stdin.read()  # serve until the parent closes our stdin


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
