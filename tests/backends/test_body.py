"""Upstream bodies from shared pieces, the in-flight budget, and a whole completion as chunks."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import numpy as np
import pytest
import simplejpeg

from livesight.backends.body import Body, DataUrl, encode_body
from livesight.backends.chunks import completion_chunks
from livesight.backends.inflight import MB, InflightBudget
from livesight.backends.render import Renderer
from livesight.backends.upstream import OpenAICompatBackend
from livesight.core.errors import TooManyImages, UpstreamBodyTooLarge, UpstreamBusy
from livesight.core.media import MediaFrame, MediaItem
from livesight.settings import ModelConfig
from tests.support.chat import chat_request

NOISE = bytes(
    simplejpeg.encode_jpeg(np.random.default_rng(2).integers(0, 255, (120, 160, 3), dtype=np.uint8), quality=90)
)


def frame_part(jpeg: bytes = NOISE, index: int = 1) -> MediaItem:
    return MediaItem("image", "ovs://…", (MediaFrame(jpeg, 160, 120, index=index, timestamp_ms=0),), stream_id="s")


def test_encode_body_is_the_json_the_plain_way_would_give() -> None:
    text = 'ünïcode "quoted" \\ and a fake token: "abc#0"'
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": text}, {"url": DataUrl((b"data:x,", b"QUJD"))}]}
        ],
        "n": 1,
    }
    plain = {
        **body,
        "messages": [{"role": "user", "content": [{"type": "text", "text": text}, {"url": "data:x,QUJD"}]}],
    }
    encoded = encode_body(body)
    expected = json.dumps(plain, separators=(",", ":"), ensure_ascii=False).encode()
    assert encoded.join() == expected and encoded.length == len(expected)
    assert encode_body({"a": 1}).join() == b'{"a":1}'


async def test_one_frame_in_many_parts_is_encoded_once() -> None:
    item = frame_part()
    request = chat_request([{"role": "user", "content": [item] * 200}])
    rendered = await Renderer("frames").render(request.messages)
    encoded = encode_body({"messages": rendered.messages})
    b64 = len(NOISE) * 4 // 3
    assert encoded.length > 200 * b64  # the upstream receives every copy ...
    assert encoded.held < 3 * b64  # ... but the body holds the base64 once
    url = "data:image/jpeg;base64," + base64.b64encode(NOISE).decode()
    (sent,) = json.loads(encoded.join())["messages"]
    assert sent["role"] == "user" and [p["image_url"]["url"] for p in sent["content"]] == [url] * 200


async def test_the_body_is_dropped_as_it_is_streamed() -> None:
    done: list[int] = []
    body = Body([b"a" * 10, b"b" * 10], 20, 20)
    got = [chunk async for chunk in body.stream(lambda: done.append(1))]
    assert got == [b"a" * 10, b"b" * 10] and body.chunks == [] and done == [1]


async def test_upstream_body_goes_with_a_content_length_and_max_images_is_checked() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "x", "object": "chat.completion", "model": "up", "choices": []})

    config = ModelConfig(id="m", base_url="http://upstream.test/v1", max_images=3)
    backend = OpenAICompatBackend(config, transport=httpx.MockTransport(handler))
    await backend.complete(chat_request([{"role": "user", "content": [frame_part()] * 3}]))
    assert seen[0].headers["content-length"] == str(len(seen[0].content))
    assert "transfer-encoding" not in seen[0].headers
    assert len(json.loads(seen[0].content)["messages"][0]["content"]) == 3
    assert backend.inflight.used == 0
    with pytest.raises(TooManyImages, match="4 images to model m"):
        await backend.complete(chat_request([{"role": "user", "content": [frame_part()] * 4}]))
    assert len(seen) == 1 and backend.inflight.used == 0
    await backend.aclose()


async def test_the_in_flight_budget_waits_then_refuses() -> None:
    budget = InflightBudget(10 * MB, wait_s=0.2)
    with pytest.raises(UpstreamBodyTooLarge):
        await budget.reserve(11 * MB, "m")
    first = await budget.reserve(6 * MB, "m")
    with pytest.raises(UpstreamBusy) as busy:
        await budget.reserve(6 * MB, "m")
    assert busy.value.headers == {"retry-after": "1"}
    waiting = asyncio.ensure_future(budget.reserve(6 * MB, "m"))
    await asyncio.sleep(0.05)
    first.release()
    first.release()  # idempotent
    second = await waiting
    assert budget.used == 6 * MB
    second.release()
    assert budget.used == 0


def test_a_whole_completion_becomes_chunks() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    completion: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 5,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"},
            {
                "index": 1,
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                "finish_reason": "tool_calls",
            },
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    chunks = completion_chunks(completion, include_usage=True)
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "chatcmpl-1" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "hello"}
    assert chunks[1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[2]["choices"][0]["delta"]["tool_calls"] == [{"index": 0, **call}]
    assert chunks[3]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[4] == {
        **{k: chunks[0][k] for k in ("id", "object", "created", "model")},
        "choices": [],
        "usage": completion["usage"],
    }
    assert len(completion_chunks(completion, include_usage=False)) == 4
    assert completion_chunks({**completion, "choices": []}, include_usage=True) == []
