"""Outermost ASGI middleware: request ids, the body size limit, one log line per request, and
a last-resort 500 in the endpoint's envelope (no stack trace leaves the process)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livesight.api.errors import error_response, internal_error_response
from livesight.core.errors import RequestTooLarge
from livesight.core.logs import request_id_var

log = logging.getLogger("livesight.access")
_VALID_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        on_request: Callable[[str, str, int], None] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.on_request = on_request  # (route template, method, status): metrics; never a raw path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        path: str = scope.get("path", "")
        status = 0
        response_started = False
        rid_header = (b"x-request-id", request_id.encode())

        overflow = False  # the body passed the limit: whatever the app answers, the client gets a 413

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if overflow and not response_started:
                return
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

        received = 0
        limit = self.max_body_bytes
        too_large = RequestTooLarge(f"request body exceeds the {limit}-byte limit")

        async def receive_wrapper() -> Message:
            nonlocal received, overflow
            if overflow:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    overflow = True
                    raise too_large
            return message

        try:
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                overflow = True
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
        except Exception:
            if not overflow:
                log.exception("unhandled error", extra={"request_id": request_id, "path": path})
                if response_started:
                    raise
                await internal_error_response(path)(scope, receive, send_wrapper)
        finally:
            if overflow and not response_started:
                overflow = False
                await error_response(too_large, path)(scope, receive, send_wrapper)
            route_path = getattr(scope.get("route"), "path", None)  # the matched route's template
            template = route_path if isinstance(route_path, str) else None
            if self.on_request is not None:
                self.on_request(template or "unmatched", str(scope.get("method")), status)
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope.get("method"),
                    "route": template or path,
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id_var.reset(token)
