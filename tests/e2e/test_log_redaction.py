"""No secret reaches a log line: a full publish + chat run, every logger captured at INFO in both formats.

The LiveKit SDK publishes; a browser-style client passes its token as `?access_token=` (uvicorn prints
the request line); the `openai` SDK asks a model whose upstream `base_url` carries `user:password@`
(httpx prints it) and one whose upstream is down (the error path); a careless client puts its API key
in the query string. Then the captured logs are searched for the publish token, the API key and the
upstream passwords. Runs inside a private network namespace (scripts/netns), like the other WebRTC tests.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import websockets.sync.client

from livesight.core.clock import SystemClock
from livesight.core.logs import make_handler
from livesight.settings import ModelConfig
from tests.e2e.test_chat_e2e import publish_signs
from tests.support.fake_upstream import MODEL, run_fake_upstream
from tests.support.server import run_server

pytestmark = [pytest.mark.webrtc, pytest.mark.timeout(240)]
PASSWORD = "upstream-Pa55word"
DOWN_PASSWORD = "down-Pa55word"
UPSTREAM_KEY = "sk-upstream-5ecret"


@pytest.fixture
def logs() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    json_out, text_out = io.StringIO(), io.StringIO()
    handlers = [make_handler("json", json_out), make_handler("text", text_out)]
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "uvicorn.access", "httpx", "aiortc", "aioice")}
    root.setLevel(logging.INFO)
    for name in ("uvicorn.access", "httpx", "aiortc"):
        logging.getLogger(name).setLevel(logging.INFO)
    for h in handlers:
        root.addHandler(h)
    yield json_out, text_out
    for h in handlers:
        root.removeHandler(h)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_a_publish_and_chat_run_logs_no_secret(tmp_path: Path, logs: tuple[io.StringIO, io.StringIO]) -> None:
    json_out, text_out = logs
    with run_fake_upstream() as fake:
        models = [
            ModelConfig(
                id="qwen",
                base_url=fake.base_url.replace("http://", f"http://alice:{PASSWORD}@"),
                upstream_model=MODEL,
                profile="vllm",
                api_key=UPSTREAM_KEY,
            ),
            ModelConfig(id="down", base_url=f"http://bob:{DOWN_PASSWORD}@127.0.0.1:{_closed_port()}/v1", timeout_s=5),
        ]
        with run_server(tmp_path, clock=SystemClock(), models=models, access_log=True) as server:
            key = server.new_key()
            with server.client(key) as c:
                stream = c.post("/v1/streams").json()
                token = stream["publish"]["token"]
                sent = asyncio.run(publish_signs(stream["publish"]["url"], token, seconds=2, fps=10))
                assert sent
                # a browser: the token in the query string, on validate and on the WebSocket
                c.get("/rtc/validate", params={"access_token": token})
                ws_url = server.base_url.replace("http://", "ws://") + f"/rtc?access_token={token}"
                with websockets.sync.client.connect(ws_url, open_timeout=10):
                    pass
                # a careless client: its API key in the URL
                c.get("/v1/streams/nope", params={"api_key": key})
            client = openai.OpenAI(base_url=server.base_url + "/v1", api_key=key, max_retries=0, timeout=60)
            part = {"type": "image_url", "image_url": {"url": f"ovs://streams/{stream['id']}?frame_index=-1"}}
            messages = [{"role": "user", "content": [part, {"type": "text", "text": "what?"}]}]
            reply = client.chat.completions.create(model="qwen", messages=messages)  # type: ignore[arg-type]
            assert reply.choices[0].message.content
            with pytest.raises(openai.APIError):
                client.chat.completions.create(model="down", messages=messages)  # type: ignore[arg-type]
            with pytest.raises(openai.APIError):
                list(client.chat.completions.create(model="down", messages=messages, stream=True))  # type: ignore[arg-type]
            httpx.get(server.base_url + "/v1/models", headers={"Authorization": f"Bearer {key}"})
    text, lines = text_out.getvalue(), json_out.getvalue()
    # the run logged what it should have (so the search below is not vacuous) ...
    assert "/rtc?access_token=***" in text and "/rtc/validate?access_token=***" in text
    assert f"http://***@127.0.0.1:{fake.base_url.rsplit(':', 1)[1]}" in text  # httpx's request line
    assert "api_key=***" in text
    # the SDK's 2,000-character join URL is shortened
    joins = [line for line in text.splitlines() if "WebSocket /rtc/v1?join_request=" in line]
    assert joins and all(len(line) < 300 and "chars)" in line for line in joins)
    records = [json.loads(line) for line in lines.splitlines() if line.startswith("{")]
    assert len(records) == len([line for line in text.splitlines() if line[:2].isdigit()]) > 5
    # ... and no secret, no escape, no colour copy
    for out in (text, lines):
        for secret in (token, token.split(".")[2], key, key[4:], PASSWORD, DOWN_PASSWORD, UPSTREAM_KEY):
            assert secret not in out
        assert "\x1b" not in out and "\\u001b" not in out and "color_message" not in out
