"""The receiver in docs/watches.md, run as written: it accepts the server's signed webhooks and refuses a
forged one."""

from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import httpx

from livesight.core.clock import FakeClock
from tests.api.chat_env import chat_env, image_message

ROOT = Path(__file__).resolve().parents[2]


def receiver_code() -> str:
    page = (ROOT / "docs" / "watches.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", page, re.S)
    return code


def test_the_docs_receiver_verifies_real_webhooks(tmp_path: Path) -> None:
    code = receiver_code()
    assert len(code.strip().splitlines()) <= 25
    script = tmp_path / "receiver.py"
    script.write_text(code)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    env = {**os.environ, "WEBHOOK_SECRET": secret, "PORT": "0"}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().split()[-1])
        hook = f"http://127.0.0.1:{port}/door"
        forged = httpx.post(
            hook,
            content=b'{"seq": 99}',
            headers={"webhook-id": "msg_x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"},
        )
        assert forged.status_code == 401
        with chat_env(tmp_path, FakeClock()) as chat, chat.server.client(chat.key) as c:
            request = {"model": "qwen", "messages": image_message(chat.ovs("frame_index=-1"), "Is the door open?")}
            body = {"request": request, "interval_ms": 250, "webhook": {"url": hook, "secret": secret}}
            created = c.post("/v1/watches", json=body)
            assert created.status_code == 201, created.text
            line = proc.stdout.readline()  # the receiver prints only results it verified
            assert line.startswith("1 None ") and "Is the door open?" in line
            shown = c.get(f"/v1/watches/{created.json()['id']}").json()
            assert shown["counts"]["delivery_failures"] == 0
    finally:
        proc.kill()
        proc.wait(10)
