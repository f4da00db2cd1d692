"""The one place errors become responses: the three envelopes of CONTRACT §2.

0. the LiveKit endpoint (/rtc, /rtc/v1, */validate): status and the message as plain text (`rtc_refusal_response`)
1. non-chat endpoints: {"detail": "<message>"}, plus "message" (the same text) on paths an OpenAI-style
   client may call that are not stream endpoints (unknown routes under /v1, /v1beta: /v1/responses, ...)
2. /chat/completions:  {"detail": {"error": E}, "error": E}, E = {"message", "type", "code", "upstream"}
3. request validation: {"error": "validation_error", "message": ..., "details": [{"loc", "msg", "type"}]}

Why the additions: the `openai` SDK puts `body["error"]["message"]` (or, without an `error` key,
`body["message"]`) into its exception text and shows nothing else, so Overshoot's `detail.error`
alone reads as a bare "Error code: 404". Overshoot clients keep reading `detail`. Envelope 3 keeps
Overshoot's string `error`, so the SDK can only show "Error code: 422" there; its `body` is
"validation_error" and `response.json()["details"]` says what failed (CONTRACT §2).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import TypedDict

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import compile_path

from livesight.core.errors import InternalError, LivesightError, StreamUnauthorized, Unauthorized, UpstreamDetails

log = logging.getLogger("livesight.api")


class ErrorObject(TypedDict):
    """E of envelope 2 (`api.schemas.ChatErrorBody` documents it in OpenAPI)."""

    message: str
    type: str
    code: str
    upstream: UpstreamDetails | None


class ChatErrorBody(TypedDict):
    error: ErrorObject


class ChatEnvelope(TypedDict):
    detail: ChatErrorBody
    error: ErrorObject


class ValidationDetail(TypedDict):
    loc: list[str | int]
    msg: str
    type: str


def is_chat_path(path: str) -> bool:
    return path.rstrip("/").endswith("/chat/completions")


def chat_error_body(exc: LivesightError) -> ChatErrorBody:
    """The `{"error": {...}}` object, also used as the mid-stream SSE error event."""
    return {
        "error": {
            "message": exc.message,
            "type": exc.type,
            "code": exc.code_for_envelope(),
            "upstream": exc.upstream,
        }
    }


def chat_envelope(exc: LivesightError) -> ChatEnvelope:
    """Envelope 2: Overshoot's `detail.error` and the same object as a top-level `error`."""
    body = chat_error_body(exc)
    return {"detail": body, "error": body["error"]}


_API_BASES = ("/v1/", "/v1beta/")


def _openai_client_path(path: str) -> bool:
    """Where a client built for the OpenAI API (base URL …/v1) may land: under an API base, outside the
    stream endpoints (whose envelope stays Overshoot's `{"detail": …}` exactly)."""
    for base in _API_BASES:
        if path.startswith(base):
            return not path[len(base) :].startswith("streams")
    return False


def detail_body(message: str, path: str) -> dict[str, str]:
    """Envelope 1, with `message` where an OpenAI-style client may read it."""
    return {"detail": message, "message": message} if _openai_client_path(path) else {"detail": message}


def error_response(exc: LivesightError, path: str) -> JSONResponse:
    headers = dict(exc.headers)
    if isinstance(exc, Unauthorized):
        headers.setdefault("WWW-Authenticate", "Bearer")
    if is_chat_path(path):
        return JSONResponse(chat_envelope(exc), status_code=exc.status_for_envelope(), headers=headers)
    if isinstance(exc, StreamUnauthorized):
        # Stream endpoints never reveal that another owner's stream exists.
        return JSONResponse(detail_body(f"stream {exc.stream_id} not found", path), status_code=404, headers=headers)
    return JSONResponse(detail_body(exc.message, path), status_code=exc.status_for_envelope(), headers=headers)


def rtc_refusal_response(exc: LivesightError) -> Response:
    """A refused `/rtc` connection or validation: the class's status and the message as plain text.

    LiveKit SDKs do not read JSON here: livekit-client fetches `/rtc/validate` after a failed upgrade and
    shows the response text; the Rust/Python SDK shows the upgrade's status and body. The ingest routes get
    this function from `create_app` (ingest cannot import api)."""
    headers = {**exc.headers, "Access-Control-Allow-Origin": "*"}
    return PlainTextResponse(exc.message, status_code=exc.status_for_envelope(), headers=headers)


def internal_error_response(path: str) -> JSONResponse:
    return error_response(InternalError("internal server error; see the server log for this request id"), path)


def _loc(loc: object) -> list[str | int]:
    parts = loc if isinstance(loc, list | tuple) else ()
    return [p if isinstance(p, int) else str(p) for p in parts]


def validation_details(errors: Sequence[Mapping[str, object]]) -> list[ValidationDetail]:
    return [
        {"loc": _loc(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in errors
    ]


def validation_response(errors: Sequence[Mapping[str, object]]) -> JSONResponse:
    return JSONResponse(
        {
            "error": "validation_error",
            "message": "Request validation failed",
            "details": validation_details(errors),
        },
        status_code=422,
    )


async def _livesight_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LivesightError)
    return error_response(exc, request.url.path)


async def _validation_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return validation_response(exc.errors())


class _HTTPStatus(LivesightError):
    """A Starlette HTTPException (404 route, 405 method, ...) in the livesight error tree."""

    type = "validation_error"

    def __init__(self, exc: StarletteHTTPException) -> None:
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        super().__init__(message, headers=dict(exc.headers or {}))
        self._status = exc.status_code

    def status_for_envelope(self) -> int:
        return self._status

    def code_for_envelope(self) -> str:
        return f"http_{self._status}"


async def _http_handler(allowed: AllowedMethods, request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
        # FastAPI's "error parsing the body" (e.g. JSON that is not UTF-8): a validation error like any bad JSON
        return validation_response([{"loc": ["body"], "msg": f"Invalid JSON: {exc.__cause__}", "type": "json_invalid"}])
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    err = _HTTPStatus(exc)
    if exc.status_code == 405:
        # Starlette names only the first route that matched the path; list every method the path supports.
        err.headers["Allow"] = ", ".join(sorted(allowed.for_path(request.url.path)))
    return error_response(err, request.url.path)


class AllowedMethods:
    """Which methods each path supports, from the routers as they are included (for 405 Allow headers)."""

    def __init__(self) -> None:
        self._routes: list[tuple[re.Pattern[str], set[str]]] = []

    def add(self, router: APIRouter, prefix: str = "") -> None:
        for route in router.routes:
            if isinstance(route, APIRoute):
                regex, _, _ = compile_path(prefix + route.path)
                self._routes.append((regex, set(route.methods or ())))

    def for_path(self, path: str) -> set[str]:
        methods: set[str] = set()
        for regex, route_methods in self._routes:
            if regex.match(path):
                methods |= route_methods
        return methods


def install(app: FastAPI, allowed: AllowedMethods) -> None:
    app.add_exception_handler(LivesightError, _livesight_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, functools.partial(_http_handler, allowed))
