"""`POST /chat/completions` (CONTRACT §6): the route. The work is `serving.chat.ChatService`.

Here: authentication, the per-key rate limit, priority over watches (held from the request's start
to the end of its answer), the client's presence and the response framing. Errors
before the first byte are ordinary error responses (chat envelope); once an SSE stream has begun, an
error is one `data: {"error": ...}` event followed by `data: [DONE]`. A client that leaves before the
answer starts cancels the work at once (499, nobody reads it); one that leaves mid-stream closes the
stream, which closes the upstream request.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, Response

from livesight.api.auth import Authenticate
from livesight.api.chat_ratelimit import Limiter
from livesight.api.errors import chat_error_body
from livesight.api.schemas import ChatError, ValidationErrorEnvelope
from livesight.api.sse import DONE, EventStream, sse_data, unless_disconnected
from livesight.core.errors import LivesightError
from livesight.serving.answer import AnswerStream
from livesight.serving.chat import ChatService
from livesight.serving.protocol import SSE_EVENT_SCHEMA, ChatCompletion, ChatCompletionRequest
from livesight.store.keys import ApiKey


def _err(description: str) -> dict[str, object]:
    return {"model": ChatError, "description": description}


CHAT_RESPONSES: dict[int | str, dict[str, object]] = {
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


class Priority(Protocol):
    """What interactive requests hold while they are answered (watches.gate.ModelGate: no waiting watch
    model call starts meanwhile)."""

    def interactive(self) -> AbstractAsyncContextManager[None]: ...


def build_router(
    service: ChatService, authenticate: Authenticate, limiter: Limiter, priority: Priority | None = None
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
        try:
            headers = await limiter.check(key.id)
        except LivesightError as exc:
            service.recorder.chat_failed("unknown", exc)
            raise
        async with contextlib.AsyncExitStack() as held:
            if priority is not None:
                await held.enter_async_context(priority.interactive())
            if not body.stream:
                completion = await unless_disconnected(http_request, service.complete(body, key.owner))
                if completion is None:
                    return Response(status_code=499)  # nobody is listening any more
                return JSONResponse(completion, headers=headers)
            answer = await unless_disconnected(http_request, service.stream(body, key.owner))
            if answer is None:
                return Response(status_code=499)  # the client left before the first chunk
            streaming = held.pop_all()  # priority is held until the stream has ended

        async def close() -> None:
            await answer.aclose()
            await streaming.aclose()

        return EventStream(_events(answer), headers=headers, on_close=close)

    return router


async def _events(answer: AnswerStream) -> AsyncIterator[bytes]:
    try:
        async for chunk in answer:
            yield sse_data(chunk)
    except LivesightError as exc:
        yield sse_data(chat_error_body(exc))
    yield DONE
