"""`livesight publish test-pattern` against a running server: frames flow, the stream is deleted."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from livesight.core.clock import SystemClock
from tests.support.server import LiveServer, run_server

LIVESIGHT = str(Path(sys.executable).parent / "livesight")
pytestmark = [pytest.mark.webrtc, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with run_server(tmp_path_factory.mktemp("cli"), clock=SystemClock()) as live:
        yield live


def run_cli(server: LiveServer, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIVESIGHT_URL": server.base_url, "LIVESIGHT_API_KEY": key}
    return subprocess.run(
        [LIVESIGHT, "publish", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_publish_test_pattern_then_delete(server: LiveServer) -> None:
    key = server.new_key()
    proc = run_cli(server, key, "test-pattern", "--width", "640", "--height", "360", "--fps", "15", "--duration", "4")
    assert proc.returncode == 0, proc.stderr
    assert "stream_id " in proc.stderr
    stream_id = proc.stderr.split("stream_id ", 1)[1].split()[0]
    assert "server: frame" in proc.stderr  # the progress line saw frames arrive
    assert f"deleted stream {stream_id}" in proc.stderr
    with server.client(key) as c:
        status = c.get(f"/v1/streams/{stream_id}").json()
    assert status["state"] == "ended"
    assert status["end_reason"] == "deleted"
    assert status["last_frame_index"] >= 30  # frozen final telemetry: ~4 s at 15 fps


def test_publish_keep_and_existing_stream(server: LiveServer) -> None:
    key = server.new_key()
    with server.client(key) as c:
        sid = c.post("/v1/streams").json()["id"]
    proc = run_cli(server, key, "test-pattern", "--stream-id", sid, "--keep", "--quiet", "--duration", "2",
                   "--width", "320", "--height", "180", "--codec", "h264")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with server.client(key) as c:
        status = c.get(f"/v1/streams/{sid}").json()
    assert status["state"] == "active"
    assert status["codec"] == "H264"
    assert status["last_frame_index"] is not None


def test_publish_needs_an_api_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "LIVESIGHT_API_KEY"}
    proc = subprocess.run(
        [LIVESIGHT, "publish", "test-pattern"],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "API key" in proc.stderr
