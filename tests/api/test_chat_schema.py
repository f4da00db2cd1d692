"""The served OpenAPI document and the server's validation agree on chat requests: a body the schema
calls invalid is a 422, a body it calls valid is never a 422 (CONTRACT §2; the fuzz run in
test_openapi_fuzz.py explores the rest)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema_rs
import pytest

from livesight.core.clock import FakeClock
from tests.api.chat_env import ChatEnv, chat_env


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatEnv]:
    with chat_env(tmp_path_factory.mktemp("schema"), FakeClock()) as e:
        yield e


def _request_validator(env: ChatEnv) -> Any:
    document = httpx.get(env.server.base_url + "/openapi.json").json()
    body = document["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return jsonschema_rs.Draft202012Validator({**body, "components": document["components"]})


def _user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"model": "qwen", "messages": [{"role": "user", "content": list(parts)}]}


CASES = [
    # (what, body, valid per the schema and the server)
    ("video_url null", _user({"type": "video_url", "video_url": None}), False),
    ("image_url missing", _user({"type": "image_url"}), False),
    ("image_url without a url", _user({"type": "image_url", "image_url": {}}), False),
    ("image_url empty url", _user({"type": "image_url", "image_url": {"url": ""}}), False),
    ("text null", _user({"type": "text", "text": None}), False),
    ("text not a string", _user({"type": "text", "text": 5}), False),
    ("empty part type", _user({"type": ""}), False),
    ("text with extra fields", _user({"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}), True),
    ("text part with a null image_url", _user({"type": "text", "text": "hi", "image_url": None}), True),
    (
        "another part type passes through",
        _user({"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}),
        True,
    ),
    ("inline image", _user({"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}}), True),
    ("ovs frame", None, True),
]


@pytest.mark.parametrize(("what", "body", "valid"), CASES, ids=[c[0] for c in CASES])
def test_schema_and_validation_agree(env: ChatEnv, what: str, body: dict[str, Any] | None, valid: bool) -> None:
    if body is None:
        body = _user({"type": "image_url", "image_url": {"url": env.ovs("frame_index=-1")}})
    assert _request_validator(env).is_valid(body) is valid, what
    r = httpx.post(env.api + "/chat/completions", json=body, headers={"Authorization": f"Bearer {env.key}"}, timeout=20)
    if valid:
        # accepted by validation; the fake vLLM may still refuse what it does not know (then 502)
        assert r.status_code != 422, r.text
    else:
        assert r.status_code == 422, r.text
        assert r.json()["error"] == "validation_error"


def test_other_part_types_are_forwarded_as_sent(env: ChatEnv) -> None:
    part = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
    httpx.post(
        env.api + "/chat/completions",
        json=_user({"type": "text", "text": "hi"}, part),
        headers={"Authorization": f"Bearer {env.key}"},
        timeout=20,
    )
    assert env.fake.requests[-1]["messages"][0]["content"][1] == part
