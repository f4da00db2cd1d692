"""Every log line of a request carries its request id (the X-Request-Id the client sent, or the one made)."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from livesight.core.clock import FakeClock
from livesight.core.logs import make_handler, request_id_var
from tests.api.chat_env import chat_env, image_message


def test_a_warning_inside_a_chat_request_carries_its_request_id(tmp_path: Path) -> None:
    out = io.StringIO()
    handler = make_handler("json", out)
    logger = logging.getLogger("livesight")
    logger.addHandler(handler)
    try:
        with chat_env(tmp_path, FakeClock()) as env, env.server.client(env.key) as c:
            env.fake.behaviour.fail_status = 500
            body = {"model": "qwen", "messages": image_message(env.ovs("frame_index=-1"))}
            answer = c.post("/v1/chat/completions", json=body, headers={"X-Request-Id": "rid-upstream-1"})
            assert answer.status_code == 502
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    warnings = [line for line in lines if line["logger"] == "livesight.chat" and line["level"] == "warning"]
    assert warnings, lines
    assert all(line.get("request_id") == "rid-upstream-1" for line in warnings)


def test_outside_a_request_no_id_is_added_and_an_explicit_one_wins() -> None:
    out = io.StringIO()
    log = logging.getLogger("test.request_id")
    log.addHandler(make_handler("json", out))
    log.propagate = False
    log.warning("outside")
    token = request_id_var.set("rid-inside")
    try:
        log.warning("inside")
        log.warning("explicit", extra={"request_id": "rid-explicit"})
    finally:
        request_id_var.reset(token)
    outside, inside, explicit = (json.loads(line) for line in out.getvalue().splitlines())
    assert "request_id" not in outside
    assert inside["request_id"] == "rid-inside"
    assert explicit["request_id"] == "rid-explicit"
