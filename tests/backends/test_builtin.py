"""The `livesight/ocr` wrapper: loading, readiness, inline images, options, chunks. The model itself is a
stand-in at the OcrModel seam (`load` / `answer`) that reports what it was given."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Sequence

import pytest

from livesight.backends.builtin import OcrBackend, builtin_config
from livesight.core.clock import FakeClock
from livesight.core.errors import ModelUnavailable, RequestInvalid
from livesight.core.media import MediaFrame, MediaItem
from livesight.settings import ModelConfig
from tests.support.chat import chat_request
from tests.support.frames import text_jpeg


class Reporter:
    loads = 0

    def __init__(self, config: ModelConfig) -> None:
        self.config = config

    def load(self) -> None:
        Reporter.loads += 1

    def answer(self, question: str, media: Sequence[MediaItem]) -> str:
        sizes = [f"{f.width}x{f.height}" for m in media for f in m.frames]
        return f"Q: {question}. Saw {len(media)} items. Sizes {', '.join(sizes) or 'none'}."


class Broken(Reporter):
    def load(self) -> None:
        raise ImportError("No module named 'rapidocr'")


def backend(factory: type[Reporter] = Reporter) -> OcrBackend:
    return OcrBackend(builtin_config("livesight/ocr"), clock=FakeClock(), factory=factory)


def frame_item() -> MediaItem:
    return MediaItem(
        "image", "ovs://x", (MediaFrame(text_jpeg("A"), 640, 360, index=3, timestamp_ms=300),), stream_id="s"
    )


async def test_answers_once_loaded() -> None:
    b = backend()
    assert not b.ready
    request = chat_request(
        [{"role": "user", "content": [{"type": "text", "text": "what text?"}, frame_item()]}], {"n": 2}
    )
    answer = await b.complete(request)
    assert b.ready
    assert answer["object"] == "chat.completion"
    assert [c["message"]["content"] for c in answer["choices"]] == ["Q: what text?. Saw 1 items. Sizes 640x360."] * 2
    assert answer["usage"]["total_tokens"] == answer["usage"]["prompt_tokens"] + answer["usage"]["completion_tokens"]
    await b.aclose()


async def test_inline_jpeg_and_refused_urls() -> None:
    b = backend()
    url = "data:image/jpeg;base64," + base64.b64encode(text_jpeg("B", 320, 200)).decode()
    answer = await b.complete(
        chat_request([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}])
    )
    assert "320x200" in answer["choices"][0]["message"]["content"]
    for part in (
        {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
        {"type": "video_url", "video_url": {"url": "data:video/mp4;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,!!!"}},
    ):
        with pytest.raises(RequestInvalid):
            await b.complete(chat_request([{"role": "user", "content": [part]}]))
    await b.aclose()


async def test_options() -> None:
    b = backend()
    msg = [{"role": "user", "content": "hi"}]
    answer = await b.complete(chat_request(msg, {"response_format": {"type": "json_object"}}))
    assert json.loads(answer["choices"][0]["message"]["content"])["answer"].startswith("Q: hi")
    for params in ({"response_format": {"type": "json_schema", "json_schema": {}}}, {"tool_choice": "required"}):
        with pytest.raises(RequestInvalid):
            await b.complete(chat_request(msg, params))
    await b.aclose()


async def test_stream_chunks() -> None:
    b = backend()
    chunks = [c async for c in b.stream(chat_request([{"role": "user", "content": "hi"}], include_usage=True))]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Q: hi. Saw 0 items. Sizes none."
    assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) == 3
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    await b.aclose()


async def test_failed_load_is_unavailable_with_the_reason() -> None:
    b = backend(Broken)
    assert await b.probe() is False
    with pytest.raises(ModelUnavailable) as err:
        await b.complete(chat_request([{"role": "user", "content": "hi"}]))
    assert "rapidocr" in err.value.message
    assert not b.ready
    await b.aclose()


async def test_probe_starts_loading() -> None:
    b = backend()
    await b.probe()
    for _ in range(200):
        if b.ready:
            break
        await asyncio.sleep(0.01)
    assert b.ready
    await b.aclose()
