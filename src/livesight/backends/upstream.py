"""Backend `openai`: an OpenAI-compatible upstream (vLLM, SGLang, Ollama, llama.cpp, hosted APIs).

One pooled `httpx.AsyncClient` per model. httpx exceptions are translated here, and only here:
timeout → `UpstreamTimeout` (504), transport failure → `UpstreamRequestFailed` (502), non-2xx →
`UpstreamHTTPError` (502 `upstream_http_<status>`, 429 stays 429) carrying the upstream body
(bounded to 4 KiB) and its rate-limit headers. An error event inside an upstream SSE stream (vLLM
sends `data: {"error": {...}}`) becomes an `UpstreamHTTPError` with the status it names.

Bodies are built by `body.py` (each distinct frame's base64 once, sent as a stream of shared pieces
with a Content-Length) under the shared `InflightBudget` (`upstream_inflight_mb`). A streamed request
answered with a complete JSON `chat.completion` is converted to chunks (`chunks.py`); any other
non-event-stream answer, or an event stream without a single chunk, is an error, never an empty answer.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import os
import ssl
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from livesight.backends.base import Chunk, check_max_images
from livesight.backends.body import Body, encode_body
from livesight.backends.chunks import completion_chunks
from livesight.backends.inflight import MB, InflightBudget, Reservation, estimate
from livesight.backends.memory import after_large_body
from livesight.backends.render import OFFLOAD_BYTES, Renderer
from livesight.backends.request import ChatRequest
from livesight.core.errors import UpstreamHTTPError, UpstreamRequestFailed, UpstreamTimeout
from livesight.core.jsontypes import JsonObject, JsonValue
from livesight.settings import ModelConfig

MAX_UPSTREAM_BODY = 4096
MAX_COMPLETION_BYTES = 32 * MB  # a whole JSON answer to a streamed request is read up to this
POOL_SHARDS = 8
PROBE_TIMEOUT_S = 3.0


class OpenAICompatBackend:
    def __init__(
        self,
        config: ModelConfig,
        *,
        executor: Executor | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        inflight: InflightBudget | None = None,
    ) -> None:
        if not config.base_url:
            raise ValueError(f"model {config.id!r}: backend 'openai' needs base_url")
        self.config = config
        self.provider = urlsplit(config.base_url).netloc or config.base_url
        self._executor = executor
        self._renderer = Renderer(config.profile, executor)
        self.inflight = inflight or InflightBudget()
        api_key = config.api_key or (os.environ.get(config.api_key_env) if config.api_key_env else None)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # httpcore's pool scans every connection for every queued request (O(connections x requests));
        # at tens of concurrent requests that dominates the CPU. Several small pools used in turn keep
        # each scan short (bench/query.py: about 3x the throughput at concurrency 32).
        shards = 1 if transport is not None else max(1, min(POOL_SHARDS, config.max_connections))
        per_shard = max(1, -(-config.max_connections // shards))
        self._clients = [
            httpx.AsyncClient(
                base_url=config.base_url.rstrip("/") + "/",
                headers=headers,
                timeout=httpx.Timeout(config.timeout_s, connect=min(config.timeout_s, 10.0)),
                limits=httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard),
                transport=transport,
                verify=tls_context(),
            )
            for _ in range(shards)
        ]
        self._next = itertools.cycle(self._clients)
        self._ready = False
        self.probe_error: str | None = "not probed yet"

    probe_before_use = True

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def not_ready_reason(self) -> str | None:
        return None if self._ready else self.probe_error

    def start(self) -> None:
        """Nothing to prepare: readiness is the health probe the registry runs."""

    async def probe(self) -> bool:
        """`GET {base_url}/models`: ready on 2xx, and on 404/405 (a server that is up but has no model
        list); not ready on no answer, 401/403 (the API key is refused) or a server error."""
        try:
            response = await self._client().get("models", timeout=PROBE_TIMEOUT_S)
        except httpx.TimeoutException:
            self.probe_error = f"no answer from {self.provider} within {PROBE_TIMEOUT_S:g} s"
        except httpx.HTTPError as exc:
            self.probe_error = f"cannot reach {self.provider} ({type(exc).__name__}: {exc})"
        else:
            if response.is_success or response.status_code in (404, 405):
                self.probe_error = None
            elif response.status_code in (401, 403):
                self.probe_error = f"{self.provider} refused the API key (HTTP {response.status_code})"
            else:
                self.probe_error = f"{self.provider} answered its health probe with HTTP {response.status_code}"
        self._ready = self.probe_error is None
        return self._ready

    async def aclose(self) -> None:
        await asyncio.gather(*(client.aclose() for client in self._clients))

    def _client(self) -> httpx.AsyncClient:
        return next(self._next)

    async def body(self, request: ChatRequest, *, stream: bool) -> dict[str, object]:
        """The upstream request body: extra_body, then the client's fields, then the rendered messages
        (media URLs as `DataUrl`s; `encode_body` serialises it)."""
        rendered = await self._renderer.render(request.messages)
        check_max_images(self.config, rendered.images)
        fields: JsonObject = {**self.config.extra_body, **request.params}
        for key, value in rendered.extra.items():
            current = fields.get(key)
            fields[key] = _merge(current, value) if isinstance(current, dict) and isinstance(value, dict) else value
        fields["model"] = self.config.upstream_model or self.config.id
        body: dict[str, object] = {**fields, "messages": rendered.messages}
        if stream:
            body["stream"] = True
            if request.include_usage:
                body["stream_options"] = {"include_usage": True}
        else:
            body.pop("stream", None)
        return body

    async def _prepared(self, request: ChatRequest, *, stream: bool) -> tuple[_Send, Reservation]:
        """The arguments of the upstream POST, and the reservation its body holds under the budget."""
        expected = estimate(request)
        reservation = await self.inflight.reserve(expected, f"model {self.config.id}")
        try:
            body = await self.body(request, stream=stream)
            encoded: Body
            if expected > OFFLOAD_BYTES:  # serialising megabytes: keep it off the event loop
                encoded = await asyncio.get_running_loop().run_in_executor(self._executor, encode_body, body)
            else:
                encoded = encode_body(body)
            del body
            reservation.resize(encoded.held)
            length = encoded.length
            reservation.on_release = lambda: after_large_body(length)
        except BaseException:
            reservation.release()
            raise
        headers = {**_JSON, "content-length": str(encoded.length)}
        return _Send(encoded.stream(reservation.release), headers), reservation

    async def complete(self, request: ChatRequest) -> JsonObject:
        send, reservation = await self._prepared(request, stream=False)
        try:
            response = await self._client().post("chat/completions", content=send.content, headers=send.headers)
        except httpx.HTTPError as exc:
            raise self._translate(exc) from None
        finally:
            reservation.release()
            del send
        if not response.is_success:
            raise self._http_error(response.status_code, response.content, response.headers)
        return self._completion(response.status_code, response.content)

    def _completion(self, status: int, content: bytes) -> JsonObject:
        try:
            data = json.loads(content)
        except ValueError:
            raise UpstreamRequestFailed(
                f"model {self.config.id}: upstream answered {status} with a body that is not JSON",
                provider=self.provider,
                upstream_status=status,
                body=_bounded(content),
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise UpstreamRequestFailed(
                f"model {self.config.id}: upstream answer is not a chat.completion",
                provider=self.provider,
                upstream_status=status,
                body=_bounded(content),
            )
        data["model"] = self.config.id
        return data

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        send, reservation = await self._prepared(request, stream=True)
        try:
            async with self._client().stream(
                "POST", "chat/completions", content=send.content, headers=send.headers
            ) as response:
                reservation.release()  # the body has been sent
                del send
                if not response.is_success:
                    raise self._http_error(response.status_code, await response.aread(), response.headers)
                kind = response.headers.get("content-type", "").partition(";")[0].strip().lower()
                if kind == "application/json" or kind.endswith("+json"):
                    for chunk in await self._whole_answer(response, request.include_usage):
                        yield chunk
                    return
                if kind not in ("text/event-stream", ""):
                    raise UpstreamRequestFailed(
                        f"model {self.config.id}: upstream answered a streamed request with content-type {kind}, "
                        "not an event stream",
                        provider=self.provider,
                        upstream_status=response.status_code,
                        body=_bounded(await _head(response)),
                    )
                sent = 0
                async for chunk in self._events(response):
                    sent += 1
                    yield chunk
                if not sent:
                    raise UpstreamRequestFailed(
                        f"model {self.config.id}: upstream ended the stream without sending any chunk",
                        provider=self.provider,
                        upstream_status=response.status_code,
                    )
        except httpx.HTTPError as exc:
            raise self._translate(exc) from None
        finally:
            reservation.release()

    async def _events(self, response: httpx.Response) -> AsyncIterator[Chunk]:
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                chunk = json.loads(data)
            except ValueError:
                raise UpstreamRequestFailed(
                    f"model {self.config.id}: upstream sent an event that is not JSON",
                    provider=self.provider,
                    body=data[:MAX_UPSTREAM_BODY],
                ) from None
            if isinstance(chunk, dict) and "error" in chunk:
                raise self._stream_error(chunk)
            if isinstance(chunk, dict):
                chunk["model"] = self.config.id
                yield chunk

    async def _whole_answer(self, response: httpx.Response, include_usage: bool) -> list[Chunk]:
        """A complete JSON answer to a streamed request, as chunks (or the error it is)."""
        content = await _head(response, MAX_COMPLETION_BYTES + 1)
        if len(content) > MAX_COMPLETION_BYTES:
            raise UpstreamRequestFailed(
                f"model {self.config.id}: upstream answered a streamed request with a JSON body over "
                f"{MAX_COMPLETION_BYTES // MB} MiB",
                provider=self.provider,
                upstream_status=response.status_code,
                body=_bounded(content[:MAX_UPSTREAM_BODY]),
            )
        if isinstance(error := _json_object(content).get("error"), dict | str):
            raise self._stream_error({"error": error})
        chunks = completion_chunks(self._completion(response.status_code, content), include_usage=include_usage)
        if not chunks:
            raise UpstreamRequestFailed(
                f"model {self.config.id}: upstream answered a streamed request with a completion without choices",
                provider=self.provider,
                upstream_status=response.status_code,
                body=_bounded(content),
            )
        return chunks

    # --- error translation ------------------------------------------------------------------------

    def _translate(self, exc: httpx.HTTPError) -> Exception:
        where = f"model {self.config.id} at {self.provider}"
        if isinstance(exc, httpx.TimeoutException):
            return UpstreamTimeout(
                f"{where} did not answer within {self.config.timeout_s:g} s ({type(exc).__name__})",
                provider=self.provider,
            )
        return UpstreamRequestFailed(
            f"{where} could not be reached: {type(exc).__name__}: {exc}", provider=self.provider
        )

    def _http_error(self, status: int, content: bytes, headers: httpx.Headers) -> UpstreamHTTPError:
        body = _bounded(content)
        message = _error_message(body) or f"HTTP {status}"
        extra_headers = {"retry-after": headers["retry-after"]} if status == 429 and "retry-after" in headers else {}
        return UpstreamHTTPError(
            f"model {self.config.id}: upstream answered {status}: {message}",
            provider=self.provider,
            upstream_status=status,
            body=body,
            rate_limits=_rate_limits(headers),
            headers=extra_headers,
        )

    def _stream_error(self, chunk: JsonObject) -> UpstreamHTTPError:
        error = chunk.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        status = code if isinstance(code, int) and 400 <= code <= 599 else 500
        body = _bounded(_dumps(chunk))
        return UpstreamHTTPError(
            f"model {self.config.id}: upstream failed mid-stream: {_error_message(body) or 'error event'}",
            provider=self.provider,
            upstream_status=status,
            body=body,
        )


_JSON = {"content-type": "application/json"}


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The one TLS context every upstream client shares: building one (certifi's CA bundle) takes about
    50 ms, and each client made its own, so 7 models × 8 pool shards took ~2.8 s at startup."""
    return httpx.create_ssl_context()


@dataclass(frozen=True, slots=True)
class _Send:
    """What the upstream POST sends: the body as a stream of pieces, and its headers."""

    content: AsyncIterator[bytes]
    headers: dict[str, str]


def _dumps(value: JsonValue) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


async def _head(response: httpx.Response, limit: int = MAX_UPSTREAM_BODY) -> bytes:
    """At most `limit` bytes of the response body (the rest is not read)."""
    out = bytearray()
    async for piece in response.aiter_bytes():
        out += piece
        if len(out) >= limit:
            break
    return bytes(out[:limit])


def _json_object(content: bytes) -> JsonObject:
    try:
        value = json.loads(content)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _merge(base: JsonObject, extra: JsonObject) -> JsonObject:
    merged = dict(base)
    for key, value in extra.items():
        current = merged.get(key)
        merged[key] = _merge(current, value) if isinstance(current, dict) and isinstance(value, dict) else value
    return merged


def _bounded(content: bytes) -> JsonValue:
    """The upstream body for the error envelope: parsed JSON if it fits 4 KiB, else a truncated string."""
    if len(content) <= MAX_UPSTREAM_BODY:
        try:
            parsed: JsonValue = json.loads(content)
        except ValueError:
            pass
        else:
            return parsed
    return content[:MAX_UPSTREAM_BODY].decode("utf-8", "replace")


def _error_message(body: JsonValue) -> str | None:
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:500]
        if isinstance(error, str):
            return error[:500]
        if isinstance(body.get("detail"), str):
            return str(body["detail"])[:500]
    if isinstance(body, str) and body.strip():
        return body.strip()[:200]
    return None


def _rate_limits(headers: httpx.Headers) -> dict[str, str] | None:
    limits = {k.lower(): v for k, v in headers.items() if k.lower().startswith("x-ratelimit-")}
    if "retry-after" in headers:
        limits["retry-after"] = headers["retry-after"]
    return limits or None
