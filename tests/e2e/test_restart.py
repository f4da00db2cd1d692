"""SIGKILL a real `livesight serve` and start it again on the same data_dir: nothing that can be kept
is lost. Streams stay active with their lease deadline, keepalive works, a pulled file source pulls
again with indexes after every earlier one, a tombstone stays a tombstone, and a query for a frame
from before the restart gets `segment_empty` saying the server restarted (never another frame).
The publisher part (the livekit SDK reconnecting with its old token) runs in the test namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from tests.support.video import write_video
from tests.test_cli import free_port, wait_ready

BIN = Path(sys.executable).with_name("livesight")
pytestmark = pytest.mark.timeout(180)


class Serve:
    """`livesight serve` on one data_dir and port; `start()` again after `kill()` restarts it."""

    def __init__(self, data_dir: Path, clips: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "LIVESIGHT_DATA_DIR": str(data_dir),
            "LIVESIGHT_LOG_JSON": "false",
            "LIVESIGHT_SOURCE_FILE_DIR": str(clips),
            "LIVESIGHT_PRELOAD_BUILTIN_MODELS": "false",
        }
        self.proc: subprocess.Popen[str] | None = None
        self.runs = 0
        keys = SQLiteKeyStore(data_dir / "livesight.db")
        self.key = keys.create("restart-test")[1]
        keys.close()

    def start(self) -> None:
        self.runs += 1
        log = (self.data_dir / f"serve-{self.runs}.log").open("w")
        self.proc = subprocess.Popen(
            [str(BIN), "serve", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )
        wait_ready(self.base, self.proc)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(10) == -signal.SIGKILL

    def log(self) -> str:
        return (self.data_dir / f"serve-{self.runs}.log").read_text()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {self.key}"}, timeout=10)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    clips = tmp_path / "clips"
    clips.mkdir()
    write_video(clips / "clip.mp4", frames=20, fps=10)
    server = Serve(tmp_path / "data", clips)
    try:
        yield server
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(10)


def status(c: httpx.Client, sid: str) -> dict[str, Any]:
    r = c.get(f"/v1/streams/{sid}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def frames_after(c: httpx.Client, sid: str, index: int) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        body = status(c, sid)
        return body if (body["last_frame_index"] or -1) > index else None

    return wait_for(ready, timeout=30, interval=0.1, what=f"frames of {sid} after {index}")


def test_sigkill_then_restart_keeps_streams_sources_tombstones_and_says_what_was_lost(serve: Serve) -> None:
    serve.start()
    with serve.client() as c:
        publish = c.post("/v1/streams").json()
        pulled = c.post("/v1/streams", json={"source": {"type": "file", "url": "clip.mp4"}}).json()
        deleted = c.post("/v1/streams").json()["id"]
        assert c.delete(f"/v1/streams/{deleted}").status_code == 200
        lease = c.post(f"/v1/streams/{publish['id']}/keepalive").json()["expires_at_ms"]
        before = frames_after(c, pulled["id"], 8)
        old_index = before["last_frame_index"]
        assert c.get(f"/v1/streams/{pulled['id']}/frames/{old_index}").status_code == 200
        serve.kill()  # no shutdown, no checkpoint: whatever the file holds now
    serve.start()
    with serve.client() as c:
        again = status(c, publish["id"])
        assert again["state"] == "active" and again["expires_at_ms"] == lease
        assert again["publisher_connected"] is False
        renewed = c.post(f"/v1/streams/{publish['id']}/keepalive")
        assert renewed.status_code == 200 and renewed.json()["expires_at_ms"] >= lease
        tomb = status(c, deleted)
        assert tomb["state"] == "ended" and tomb["end_reason"] == "deleted"
        # the pulled source is pulled again; its indexes continue after every one handed out before
        resumed = frames_after(c, pulled["id"], old_index)
        assert resumed["first_available_frame_index"] > old_index
        assert resumed["stream_time_ms"] > before["stream_time_ms"]
        assert resumed["created_at_ms"] == before["created_at_ms"]
        # a frame from before the restart: a clear segment_empty, never another frame
        r = c.get(f"/v1/streams/{pulled['id']}/frames/{old_index}")
        assert r.status_code == 404 and "restarted" in r.json()["detail"], r.text
        chat = c.post(
            "/v1/chat/completions",
            json={
                "model": "livesight/ocr",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "what does it say?"},
                            {
                                "type": "image_url",
                                "image_url": {"url": f"ovs://streams/{pulled['id']}?frame_index={old_index}"},
                            },
                        ],
                    }
                ],
            },
        )
        assert chat.status_code == 404, chat.text
        error = chat.json()["detail"]["error"]
        assert error["code"] == "segment_empty" and "restarted" in error["message"]
        # nothing has arrived on the publish stream since the restart: relative queries say so too
        r = c.get(f"/v1/streams/{publish['id']}/frames/-1")
        assert r.status_code == 404 and "restarted" in r.json()["detail"], r.text
        listed = c.get("/v1/streams").json()["data"]
        assert [(s["id"], s["state"]) for s in listed] == [
            (pulled["id"], "active"),
            (publish["id"], "active"),
            (deleted, "ended"),
        ]
    assert "restored 2 active streams and 1 tombstones" in serve.log()


@pytest.mark.webrtc
def test_publisher_reconnects_after_sigkill_with_its_old_token_and_indexes_continue(serve: Serve) -> None:
    from tests.e2e.media import publish_pattern

    serve.start()
    with serve.client() as c:
        stream = c.post("/v1/streams").json()
        url, token = stream["publish"]["url"], stream["publish"]["token"]
        first = asyncio.run(publish_pattern(url, token, seconds=2, fps=15))
        assert first.connect_error is None and first.publish_error is None
        before = status(c, stream["id"])
        assert before["last_frame_index"] is not None and before["last_frame_index"] >= 10
        serve.kill()
    serve.start()
    with serve.client() as c:
        assert status(c, stream["id"])["state"] == "active"
        second = asyncio.run(publish_pattern(url, token, seconds=2, fps=15))  # the token from before
        assert second.connect_error is None and second.publish_error is None
        after = frames_after(c, stream["id"], before["last_frame_index"])
        assert after["first_available_frame_index"] > before["last_frame_index"]
        assert after["stream_time_ms"] > before["stream_time_ms"]
        r = c.get(f"/v1/streams/{stream['id']}/frames/{before['last_frame_index']}")
        assert r.status_code == 404 and "restarted" in r.json()["detail"]
        with contextlib.suppress(httpx.HTTPError):
            c.delete(f"/v1/streams/{stream['id']}")
