"""SIGKILL a server in the middle of a watch and start it again on the same data_dir: the watch resumes,
its recorded results are still there, and its seq continues after the last one recorded."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from livesight.store.keys import SQLiteKeyStore
from tests.support.polling import wait_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(180)


@contextlib.contextmanager
def server(spec: dict[str, Any]) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.environ.get("PYTHONPATH", ""), str(ROOT)])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.watch_process", json.dumps(spec)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, f"server exited with {proc.wait(10)}"
        yield proc, json.loads(line)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_sigkill_mid_watch_then_restart_resumes_it(tmp_path: Path) -> None:
    keys = SQLiteKeyStore(tmp_path / "keys.db")
    key = keys.create("restart")[1]
    keys.close()
    headers = {"Authorization": f"Bearer {key}"}
    with server({"dir": str(tmp_path), "key": key}) as (proc, info):
        stream_id = info["stream_id"]
        with httpx.Client(base_url=info["url"], headers=headers, timeout=10) as c:
            url = f"ovs://streams/{stream_id}?frame_index=-1"
            request = {
                "model": "qwen",
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}],
            }
            created = c.post("/v1/watches", json={"request": request, "interval_ms": 250, "only_on_new_frames": False})
            assert created.status_code == 201, created.text
            watch_id = created.json()["id"]
            wait_for(
                lambda: c.get(f"/v1/watches/{watch_id}/results").json()["last_seq"] >= 3, timeout=20, what="3 results"
            )
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
    with (
        server({"dir": str(tmp_path), "key": key, "stream_id": stream_id}) as (_, info),
        httpx.Client(base_url=info["url"], headers=headers, timeout=10) as c,
    ):
        shown = c.get(f"/v1/watches/{watch_id}").json()
        assert shown["state"] == "active", shown
        before = [r["seq"] for r in c.get(f"/v1/watches/{watch_id}/results").json()["data"]]
        assert before[:3] == [1, 2, 3] and before == list(range(1, len(before) + 1))
        wait_for(
            lambda: c.get(f"/v1/watches/{watch_id}/results", params={"after": before[-1]}).json()["data"],
            timeout=20,
            what="a result after the restart",
        )
        after = c.get(f"/v1/watches/{watch_id}/results", params={"after": before[-1]}).json()["data"]
        assert after[0]["seq"] == before[-1] + 1 and after[0]["error"] is None
        assert after[0]["frames"][0]["frame_indexes"][0] > 9  # a frame pushed after the restart
