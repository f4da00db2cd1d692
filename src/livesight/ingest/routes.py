"""HTTP and WebSocket routes of the embedded LiveKit-compatible endpoint, on the API server's port.

`/rtc` (v0, the publisher half of the dual-PC layout), `/rtc/v1` (single PC), and their `/validate`
twins. Clients try v1 first; when v1 is off both v1 paths answer 404 (and never with the phrase
"requested room does not exist"), which is what makes the Rust and JS SDKs fall back to `/rtc`.

Refusals are the typed `IngestRefused` errors of core/errors.py, with the status the SDKs understand:
401 stops their retries (bad, expired or foreign token, stream not active), 409 explains a second
publisher, 400 a malformed join request. `refusal_response` (api/errors.py's `rtc_refusal_response`,
passed in by `create_app`) renders them: a WebSocket upgrade is refused with that response (ASGI denial
response), and `/validate` repeats it for clients that cannot see the upgrade status (browsers).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import PlainTextResponse, Response
from starlette.websockets import WebSocketDisconnect, WebSocketState

from livesight.core.errors import IngestRefused, LivesightError, StreamNotFound
from livesight.ingest import signal
from livesight.ingest.hub import EmbeddedIngest

log = logging.getLogger(__name__)
V1_OFF = "v1 signalling is disabled on this server; use /rtc"
V1_VIEWERS = "viewers connect with v0 signalling; use /rtc"
"""v1 (single PC) would need `MediaSectionsRequirement` to send media to a client: viewers get the same
404 as a server without v1, which makes both SDKs fall back to /rtc (see ingest/viewer.py)."""
RefusalResponse = Callable[[LivesightError], Response]


class WebSocketChannel:
    """`session.SignalChannel` over a Starlette WebSocket (binary frames only)."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.closed = False

    async def send(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            await self.ws.send_bytes(data)
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.closed = True

    async def receive(self) -> bytes | None:
        while not self.closed:
            try:
                message = await self.ws.receive()
            except (WebSocketDisconnect, RuntimeError, OSError):
                break
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("bytes")
            if data is not None:
                return bytes(data)
            log.debug("ignoring a text WebSocket message (LiveKit signalling is binary)")
        self.closed = True
        return None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        if self.ws.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await self.ws.close(code, reason[:120])


def _token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """`Authorization: Bearer` first (Rust SDK), then `?access_token=` (browsers), like LiveKit."""
    scheme, _, value = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return query.get("access_token") or None


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


class _DenialNoiseFilter(logging.Filter):
    """uvicorn 0.54's websockets-sansio protocol logs "ASGI callable returned without completing
    handshake" after a correct denial response (the refusal itself is sent fine). Refusals are
    logged by us at INFO with their reason; drop that misleading ERROR line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "ASGI callable returned without completing handshake."


def _quiet_uvicorn_denials() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DenialNoiseFilter) for f in logger.filters):
        logger.addFilter(_DenialNoiseFilter())


def build_router(ingest: EmbeddedIngest, refusal_response: RefusalResponse) -> APIRouter:
    _quiet_uvicorn_denials()
    router = APIRouter(include_in_schema=False)

    async def validate(request: Request, v1: bool) -> Response:
        if v1 and not ingest.options.v1:
            return refusal_response(StreamNotFound(V1_OFF))
        try:
            admission = ingest.admit(_token(request.headers, request.query_params))
        except IngestRefused as exc:
            return refusal_response(exc)
        if v1 and admission.role == "viewer":
            return refusal_response(StreamNotFound(V1_VIEWERS))
        return PlainTextResponse("success", headers={"Access-Control-Allow-Origin": "*"})

    async def serve(ws: WebSocket, v1: bool) -> None:
        if v1 and not ingest.options.v1:
            await ws.send_denial_response(refusal_response(StreamNotFound(V1_OFF)))
            return
        join_request = None
        try:
            if v1:
                join_request = signal.parse_join_request(ws.query_params.get("join_request", ""))
                resume = join_request.reconnect
            else:
                resume = _truthy(ws.query_params.get("reconnect"))
            admission = ingest.admit(_token(ws.headers, ws.query_params), check_busy=not resume)
        except IngestRefused as exc:  # SignalError included (400)
            if not isinstance(exc, signal.SignalError):
                log.info("refused a publisher: %s (%d)", exc.message, exc.status)
            await ws.send_denial_response(refusal_response(exc))
            return
        if v1 and admission.role == "viewer":
            await ws.send_denial_response(refusal_response(StreamNotFound(V1_VIEWERS)))
            return
        await ws.accept()
        channel = WebSocketChannel(ws)
        if resume:
            # aiortc cannot restart ICE: refuse the resume, the client then rejoins from scratch.
            await channel.send(signal.refuse_resume().SerializeToString())
            await channel.close(1000, "resume not supported; rejoin")
            return
        try:
            auto_subscribe = ws.query_params.get("auto_subscribe") not in ("0", "false")
            await ingest.serve(admission, channel, join_request, auto_subscribe=auto_subscribe)
        except IngestRefused as exc:
            await channel.close(4009, exc.message)

    @router.get("/rtc/validate")
    async def rtc_validate(request: Request) -> Response:
        return await validate(request, v1=False)

    @router.get("/rtc/v1/validate")
    async def rtc_v1_validate(request: Request) -> Response:
        return await validate(request, v1=True)

    @router.websocket("/rtc")
    async def rtc(ws: WebSocket) -> None:
        await serve(ws, v1=False)

    @router.websocket("/rtc/v1")
    async def rtc_v1(ws: WebSocket) -> None:
        await serve(ws, v1=True)

    return router
