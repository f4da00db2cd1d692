"""The log redactor on tricky inputs, and the handler that applies it to every record."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from livesight.core.logs import make_handler, resolve_format
from livesight.core.redact import redact

KEY = "ovs-Zq3x_9kLmN-pQrStUvWxYz0123456789abcdefghij"
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzdHJlYW0ifQ.c2lnbmF0dXJlLXBhcnQtaGVyZQ"
PASSWORD = "hunter2-Secr3t"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f'10.0.0.1:5 - "WebSocket /rtc?access_token={JWT}" [accepted]', JWT),
        (f"GET /rtc/validate?auto_subscribe=1&access_token={JWT}&sdk=js HTTP/1.1", JWT),
        (f"HTTP Request: POST http://alice:{PASSWORD}@gpu.lan:8000/v1/chat/completions", PASSWORD),
        (f"rtsp://admin:{PASSWORD}@10.0.0.9:554/stream1 failed", PASSWORD),
        (f"https://{PASSWORD}@git.example/x.git", PASSWORD),  # a token as the user part
        (f"ConnectError('http://u:{PASSWORD}@[::1]:9/v1')", PASSWORD),
        (f"Authorization: Bearer {KEY}", KEY),
        (f"headers={{'authorization': 'Bearer {KEY}', 'x': 1}}", KEY),
        (f"[(b'Authorization', b'Bearer {KEY}'), (b'host', b'x')]", KEY),
        (f"X-Api-Key: {PASSWORD}", PASSWORD),
        (f"Cookie: session={PASSWORD}", PASSWORD),
        (f"Cookie: theme=dark; sid={PASSWORD}", PASSWORD),
        (f"{{'set-cookie': 'sid={PASSWORD}; Path=/'}}", PASSWORD),
        (f"invalid key {KEY} presented", KEY),
        (f"token {JWT} expired", JWT),
        (f"ModelConfig(id='m', api_key='{PASSWORD}', timeout_s=5)", PASSWORD),
        (f'{{"client_secret": "{PASSWORD}", "n": 1}}', PASSWORD),
        (f"?X-Amz-Signature={PASSWORD}&X-Amz-Credential={PASSWORD}", PASSWORD),
        (f"password={PASSWORD} user=bob", PASSWORD),
        (f"{KEY[:20]}", KEY[:20]),  # a key cut short is still a key
        (f"Basic {PASSWORD}", PASSWORD),
    ],
)
def test_secrets_are_removed(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert "***" in out
    assert redact(out) == out  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "refused a publisher: invalid token: expired (401)",
        "usage: prompt_tokens=100 completion_tokens=3 max_tokens=64",
        "stream 6df62e9b-2277-49d0-9547-dab5fde4178f: receiving video TR_DUMb3nVRasyO (vp8, 640x480)",
        "GET http://127.0.0.1:7880/v1/streams?limit=10 200",
        "a basic check of the token bucket",
        "missing Authorization header; no cookie set",
        "stream_id=abc key_id=key_123 frame_index=-1",
    ],
)
def test_harmless_text_is_kept(text: str) -> None:
    assert redact(text) == text


def test_ansi_escapes_are_stripped_and_long_runs_shortened() -> None:
    assert redact("Started [\x1b[36m123\x1b[0m] \x1b]0;title\x07ok\r") == "Started [123] ok"
    blob = "CAESnwwfiwgAAAAAAAD_7VpLb9tGEG4DJG0N-JJTj4seA6y5yzc30IF" * 40
    out = redact(f'"WebSocket /rtc/v1?join_request={blob}" [accepted]')
    assert len(out) < 120 and out.startswith('"WebSocket /rtc/v1?join_request=CAESnwwf') and "chars)" in out


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, io.StringIO]]:
    json_out, text_out = io.StringIO(), io.StringIO()
    handlers = [make_handler("json", json_out), make_handler("text", text_out)]
    logger = logging.getLogger("tests.redact")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    for h in handlers:
        logger.addHandler(h)
    yield logger, json_out, text_out
    for h in handlers:
        logger.removeHandler(h)
    logger.propagate = True


def test_every_part_of_a_record_is_redacted(captured: tuple[logging.Logger, io.StringIO, io.StringIO]) -> None:
    logger, json_out, text_out = captured
    # uvicorn's access line: the path is an argument, and color_message an extra full of escapes
    logger.info(
        '%s - "%s %s HTTP/%s" %d',
        "10.0.0.1:5",
        "GET",
        f"/rtc/validate?access_token={JWT}",
        "1.1",
        200,
        extra={"color_message": "\x1b[1mGET\x1b[0m"},
    )
    logger.info("upstream", extra={"base_url": f"http://u:{PASSWORD}@h/v1", "api_key": "plain-secret", "n": 3})
    logger.info("nested", extra={"request": {"headers": {"authorization": f"Bearer {KEY}"}, "urls": [JWT]}})
    try:
        raise ConnectionError(f"cannot connect to http://u:{PASSWORD}@h/v1 with {KEY}")
    except ConnectionError:
        logger.exception("upstream failed")
    logger.info("odd %s %s", "one")  # a broken format string still logs, redacted
    for out in (json_out.getvalue(), text_out.getvalue()):
        for secret in (JWT, KEY, PASSWORD, "plain-secret", "\x1b", "color_message"):
            assert secret not in out
    records = [json.loads(line) for line in json_out.getvalue().splitlines()]
    assert [r["msg"][:13] for r in records[:2]] == ["10.0.0.1:5 - ", "upstream"]
    assert records[1]["n"] == 3 and records[1]["api_key"] == "***"
    assert "ConnectionError" in records[3]["exc"]
    assert "Traceback" in text_out.getvalue()


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_format_is_text_on_a_terminal_and_json_otherwise() -> None:
    assert resolve_format("auto", _Tty()) == "text"
    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("json", _Tty()) == "json"
    assert resolve_format("text", io.StringIO()) == "text"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("unit", ["ab-", "a.b_", "http://", "key=", '"token": "', "eyJab."])
def test_cost_stays_linear_on_long_repetitive_text(unit: str) -> None:
    # ~1 MB: linear patterns take about a second; a quadratic one would take hours (the timeout fails it)
    text = unit * (1_000_000 // len(unit))
    out = redact(text)
    assert 0 < len(out) < 2 * len(text)
