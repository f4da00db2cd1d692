"""Backend `openai`: every httpx failure is translated, and the request body is what the profile says."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from livesight.backends.upstream import OpenAICompatBackend
from livesight.core.errors import UpstreamError, UpstreamHTTPError, UpstreamRequestFailed, UpstreamTimeout
from livesight.settings import ModelConfig
from tests.support.chat import chat_request

CONFIG = ModelConfig(id="m", base_url="http://upstream.test/v1", upstream_model="up", api_key="sk-1", timeout_s=5)
REQUEST = chat_request([{"role": "user", "content": "hi"}], {"temperature": 0.1})


def backend(handler: Any, config: ModelConfig = CONFIG) -> OpenAICompatBackend:
    return OpenAICompatBackend(config, transport=httpx.MockTransport(handler))


def raising(exc: Exception) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (httpx.ConnectError("refused"), UpstreamRequestFailed),
        (httpx.ConnectTimeout("slow connect"), UpstreamTimeout),
        (httpx.ReadTimeout("slow read"), UpstreamTimeout),
        (httpx.WriteTimeout("slow write"), UpstreamTimeout),
        (httpx.PoolTimeout("pool full"), UpstreamTimeout),
        (httpx.ReadError("reset"), UpstreamRequestFailed),
        (httpx.WriteError("broken pipe"), UpstreamRequestFailed),
        (httpx.RemoteProtocolError("bad http"), UpstreamRequestFailed),
        (httpx.LocalProtocolError("bad request"), UpstreamRequestFailed),
        (httpx.UnsupportedProtocol("gopher"), UpstreamRequestFailed),
        (httpx.ProxyError("proxy"), UpstreamRequestFailed),
        (httpx.DecodingError("gzip"), UpstreamRequestFailed),
        (httpx.TooManyRedirects("loop"), UpstreamRequestFailed),
    ],
)
async def test_every_httpx_error_is_translated(exc: Exception, error: type[UpstreamError]) -> None:
    b = backend(raising(exc))
    with pytest.raises(error) as err:
        await b.complete(REQUEST)
    assert err.value.provider == "upstream.test"
    assert "model m" in err.value.message
    with pytest.raises(error):
        async for _ in b.stream(REQUEST):
            pass
    await b.aclose()


async def test_request_body_and_auth() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "x", "object": "chat.completion", "model": "up", "choices": []})

    config = CONFIG.model_copy(update={"extra_body": {"top_k": 3, "temperature": 1.0}})
    b = backend(handler, config)
    answer = await b.complete(REQUEST)
    assert answer["model"] == "m"
    body = json.loads(seen[0].content)
    assert body == {"top_k": 3, "temperature": 0.1, "model": "up", "messages": [{"role": "user", "content": "hi"}]}
    assert seen[0].headers["authorization"] == "Bearer sk-1"
    assert seen[0].url == "http://upstream.test/v1/chat/completions"
    await b.aclose()


@pytest.mark.parametrize(
    ("response", "error", "code"),
    [
        (httpx.Response(200, text="<html>"), UpstreamRequestFailed, "upstream_request_failed"),
        (httpx.Response(200, json=[1, 2]), UpstreamRequestFailed, "upstream_request_failed"),
        (
            httpx.Response(404, json={"error": {"message": "no model", "code": 404}}),
            UpstreamHTTPError,
            "upstream_http_404",
        ),
        (httpx.Response(500, text="x" * 9000), UpstreamHTTPError, "upstream_http_500"),
        (
            httpx.Response(
                429, json={"object": "error", "message": "slow down", "code": 429}, headers={"retry-after": "7"}
            ),
            UpstreamHTTPError,
            "upstream_http_429",
        ),
    ],
)
async def test_bad_answers(response: httpx.Response, error: type[UpstreamError], code: str) -> None:
    b = backend(lambda request: response)
    with pytest.raises(error) as err:
        await b.complete(REQUEST)
    assert err.value.code_for_envelope() == code
    body = err.value.upstream["body"] if err.value.upstream else None
    assert len(json.dumps(body)) <= 4096 + 2
    if code == "upstream_http_429":
        assert err.value.status_for_envelope() == 429
        assert err.value.headers == {"retry-after": "7"}
        assert "slow down" in err.value.message
    await b.aclose()


async def test_stream_error_event_and_bad_event() -> None:
    def sse(*events: str) -> Any:
        text = "".join(f"data: {e}\n\n" for e in events)
        return lambda request: httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})

    chunk = '{"id":"c","object":"chat.completion.chunk","model":"up","choices":[{"index":0,"delta":{"content":"a"}}]}'
    got = [c async for c in backend(sse(chunk, "[DONE]")).stream(REQUEST)]
    assert got[0]["model"] == "m"
    with pytest.raises(UpstreamHTTPError) as err:
        async for _ in backend(sse(chunk, '{"error":{"message":"boom","code":503}}')).stream(REQUEST):
            pass
    assert err.value.upstream_status == 503
    with pytest.raises(UpstreamRequestFailed):
        async for _ in backend(sse("{not json")).stream(REQUEST):
            pass


async def test_probe() -> None:
    ok = backend(lambda request: httpx.Response(200, json={"data": []}))
    assert await ok.probe() is True
    assert ok.ready
    down = backend(raising(httpx.ConnectError("refused")))
    assert await down.probe() is False
    assert not down.ready
