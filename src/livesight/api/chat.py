"""`POST /chat/completions` (CONTRACT §6): resolve `ovs://` parts, call the model's backend, answer.

Errors before the first byte are ordinary error responses (chat envelope); once an SSE stream has
begun, an error is one `data: {"error": ...}` event followed by `data: [DONE]`. The first upstream
chunk is awaited before the response starts, so an upstream that refuses a streamed request still
gets its proper status; that wait watches the client, and a client that leaves during it cancels the
upstream request at once (as one that disconnects later cancels the generator, which closes it).
With `stream_options.include_usage` the last chunk before `[DONE]` carries `usage` and `overshoot`;
without it, `overshoot` rides on the last chunk (no extra chunk with empty `choices`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import anyio
from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from livesight.api.auth import Authenticate
from livesight.api.chat_ratelimit import RateLimiter
from livesight.api.chat_schemas import SSE_EVENT_SCHEMA, ChatCompletion, ChatCompletionRequest
from livesight.api.errors import chat_error_body
from livesight.api.metrics import Metrics, error_code
from livesight.api.schemas import ChatError, ValidationErrorEnvelope
from livesight.backends.base import ChatRequest, Chunk, estimate_tokens
from livesight.backends.registry import ModelRegistry
from livesight.core.clock import Clock
from livesight.core.errors import InternalError, LivesightError, UpstreamError
from livesight.resolve.request import ChatResolver, ResolvedRequest
from livesight.store.keys import ApiKey

log = logging.getLogger("livesight.chat")

T = TypeVar("T")
_LOCAL_FIELDS = ("model", "messages", "stream", "stream_options", "thread_id")


def _err(description: str) -> dict[str, Any]:
    return {"model": ChatError, "description": description}


CHAT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A chat.completion, or with `stream: true` an SSE stream of chat.completion.chunk events",
        "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
    },
    400: _err(
        "Invalid ovs:// URI or query parameter, invalid segment, a model that cannot take the media, or more "
        "frames than max_request_frames (too_many_frames) or images than the model's max_images (too_many_images)"
    ),
    401: _err("Missing, unknown or revoked API key"),
    403: _err("The stream belongs to another API key (stream_unauthorized)"),
    404: _err("Unknown stream (stream_not_found), no frame (segment_empty), or unknown model id (model_unavailable)"),
    409: _err("The frame has not been produced yet (frame_not_yet_produced)"),
    410: _err("The frame was evicted (frame_evicted)"),
    413: _err(
        "Request body too large, or its upstream body alone is over upstream_inflight_mb (upstream_body_too_large)"
    ),
    422: {"model": ValidationErrorEnvelope, "description": "Request validation failed"},
    429: _err("Rate limit exceeded (rate_limit_error), or the upstream answered 429"),
    500: _err("Internal error (details in the server log)"),
    502: _err("The upstream failed (upstream_http_<status>, upstream_request_failed)"),
    503: _err(
        "The model is configured but not ready (model_not_ready; Retry-After when a retry may help), or request "
        "bodies in flight to upstreams are at upstream_inflight_mb (upstream_busy; see Retry-After)"
    ),
    504: _err("The upstream timed out (upstream_timeout)"),
}


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


_DONE = b"data: [DONE]\n\n"


def build_router(
    models: ModelRegistry,
    resolver: ChatResolver,
    authenticate: Authenticate,
    limiter: RateLimiter,
    clock: Clock,
    metrics: Metrics,
) -> APIRouter:
    router = APIRouter(tags=["chat"])
    auth = Depends(authenticate)

    @router.post(
        "/chat/completions",
        response_model=ChatCompletion,
        responses=CHAT_RESPONSES,
        summary="Create a chat completion (OpenAI-compatible; ovs:// frames and segments resolved)",
    )
    async def chat_completions(body: ChatCompletionRequest, http_request: Request, key: ApiKey = auth) -> Response:
        started = time.perf_counter()
        model = "unknown"  # a metrics label: only a configured model id, never what the client typed
        try:
            headers = limiter.check(key.id)
            model = models.get(body.model).id
            entry = await models.get_ready(body.model)
            params = body.model_dump(exclude_unset=True)
            for name in _LOCAL_FIELDS:
                params.pop(name, None)
            messages = [m.model_dump(exclude_unset=True) for m in body.messages]
            resolved = await resolver.resolve(messages, key.owner, entry.config)
            resolve_ms = (time.perf_counter() - started) * 1000
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            request = ChatRequest(resolved.messages, params, include_usage=include_usage)
            report = _Report(resolved, body.thread_id, started, resolve_ms, clock.now_ms(), metrics, model)
            if not body.stream:
                upstream_started = time.perf_counter()
                completion = await _unless_disconnected(http_request, entry.backend.complete(request))
                if completion is None:
                    return Response(status_code=499)  # nobody is listening any more
                report.first_token_ms = (time.perf_counter() - upstream_started) * 1000
                if not isinstance(completion.get("usage"), dict):
                    completion["usage"] = _estimated_usage(messages, completion)
                completion["overshoot"] = report.overshoot(completion["usage"])
                return JSONResponse(completion, headers=headers)

            chunks = entry.backend.stream(request).__aiter__()
            upstream_started = time.perf_counter()
            try:
                got = await _unless_disconnected(http_request, _first(chunks))
            except BaseException:
                await _aclose(chunks)
                raise
            if got is None:
                await _aclose(chunks)
                return Response(status_code=499)  # the client left before the first chunk
            first = got[0]
            if first is None:
                raise InternalError(f"model {body.model} ended its stream without sending an answer")
            report.first_token_ms = (time.perf_counter() - upstream_started) * 1000
            return _EventStream(
                _events(first, chunks, report, include_usage),
                media_type="text/event-stream",
                headers={**headers, "cache-control": "no-cache", "x-accel-buffering": "no"},
            )
        except LivesightError as exc:
            _failed(metrics, model, exc)
            raise

    return router


class _EventStream(StreamingResponse):
    """An SSE response that stops (closing its generator, hence the upstream request) as soon as the
    client disconnects, whatever ASGI spec version the server speaks."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def respond() -> None:
                    try:
                        await self.stream_response(send)
                    finally:
                        group.cancel_scope.cancel()

                group.start_soon(respond)
                await self.listen_for_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                await close()


def _failed(metrics: Metrics, model: str, exc: LivesightError) -> None:
    metrics.chat_failed(model, exc)
    if isinstance(exc, UpstreamError):
        log.warning("upstream failed: %s", exc.message, extra={"model": model, "code": error_code(exc)})


class _Report:
    """Builds the `overshoot` object (CONTRACT §6) and records the request's metrics with it."""

    def __init__(
        self,
        resolved: ResolvedRequest,
        thread_id: str | None,
        started: float,
        resolve_ms: float,
        now_ms: int,
        metrics: Metrics,
        model: str,
    ) -> None:
        self.metrics, self.model = metrics, model
        self.resolved = resolved
        self.thread_id = thread_id
        self.started = started
        self.resolve_ms = resolve_ms
        self.first_token_ms: float | None = None
        self.newest_age_ms = now_ms - resolved.newest_arrival_ms if resolved.newest_arrival_ms is not None else None

    def overshoot(self, usage: Any) -> dict[str, Any]:
        cached = 0
        if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens_details"), dict):
            cached = int(usage["prompt_tokens_details"].get("cached_tokens") or 0)
        timing = {
            "resolve_ms": round(self.resolve_ms, 3),
            "upstream_first_token_ms": round(self.first_token_ms, 3) if self.first_token_ms is not None else None,
            "total_ms": round((time.perf_counter() - self.started) * 1000, 3),
            "newest_frame_age_ms": self.newest_age_ms,
        }
        self.metrics.chat_done(self.model, timing, len(self.resolved.frames))
        return {
            "cache": {"thread_id": self.thread_id, "cache_hit": cached > 0, "cached_input_tokens": cached},
            "frames": self.resolved.frames,
            "timing": timing,
        }


def _is_tail(chunk: Chunk) -> bool:
    """A chunk that may be the last one: it finishes a choice or carries usage."""
    if chunk.get("usage"):
        return True
    choices = chunk.get("choices")
    return isinstance(choices, list) and any(isinstance(c, dict) and c.get("finish_reason") for c in choices)


async def _events(
    first: Chunk | None, chunks: AsyncIterator[Chunk], report: _Report, include_usage: bool
) -> AsyncIterator[bytes]:
    held: Chunk | None = None  # a tail chunk, kept back so `overshoot` can ride on the last one
    completion_text: list[str] = []
    usage: Any = None
    last_base: Chunk = {}
    try:
        chunk = first
        while chunk is not None:
            last_base = chunk
            if chunk.get("usage"):
                usage = chunk["usage"]
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") if isinstance(choice, dict) else None
                if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                    completion_text.append(delta["content"])
            if held is not None:
                yield _sse(held)
                held = None
            if _is_tail(chunk):
                held = chunk
            else:
                yield _sse(chunk)
            chunk = await anext(chunks, None)
        if include_usage and usage is None:
            usage = {"prompt_tokens": 0, "completion_tokens": estimate_tokens("".join(completion_text))}
            usage["total_tokens"] = usage["completion_tokens"]
            if held is not None:
                yield _sse(held)
            held = {k: last_base[k] for k in ("id", "object", "created", "model") if k in last_base}
            held.update(choices=[], usage=usage)
        if held is None:
            held = {k: last_base[k] for k in ("id", "object", "created", "model") if k in last_base}
            held["choices"] = []
        held["overshoot"] = report.overshoot(usage)
        yield _sse(held)
        yield _DONE
    except LivesightError as exc:
        log.warning("chat stream failed: %s", exc.message)
        _failed(report.metrics, report.model, exc)
        yield _sse(chat_error_body(exc))
        yield _DONE
    except Exception:
        log.exception("chat stream failed")
        report.metrics.chat_failed(report.model, InternalError("internal error while streaming"))
        yield _sse(chat_error_body(InternalError("internal error while streaming; see the server log")))
        yield _DONE
    finally:
        await _aclose(chunks)


async def _first(chunks: AsyncIterator[Chunk]) -> tuple[Chunk | None]:
    """The first chunk (None when there is none), boxed so that None can mean "the client left"."""
    try:
        return (await chunks.__anext__(),)
    except StopAsyncIteration:
        return (None,)


async def _aclose(chunks: AsyncIterator[Chunk]) -> None:
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T | None:
    """Await `work`, cancelling it (and with it the upstream request) if the client disconnects
    first; None then."""
    task = asyncio.ensure_future(work)
    gone = False

    async def watch() -> None:
        nonlocal gone
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                gone = True
                task.cancel()
                return

    watcher = asyncio.ensure_future(watch())
    try:
        return await task
    except asyncio.CancelledError:
        if gone and not _current_task_cancelling():
            log.info("client disconnected; upstream request cancelled")
            return None
        raise
    finally:
        watcher.cancel()


def _current_task_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _estimated_usage(messages: list[dict[str, Any]], completion: dict[str, Any]) -> dict[str, int]:
    prompt = sum(estimate_tokens(json.dumps(m.get("content"), default=str)) for m in messages)
    text = "".join(
        str((c.get("message") or {}).get("content") or "")
        for c in completion.get("choices") or ()
        if isinstance(c, dict)
    )
    completion_tokens = estimate_tokens(text)
    return {"prompt_tokens": prompt, "completion_tokens": completion_tokens, "total_tokens": prompt + completion_tokens}
