"""Server-sent events, and answering only while the client is there: the one place for both.

`EventStream` is an SSE response that stops (closing its generator, hence whatever upstream work it
drives) as soon as the client disconnects, whatever ASGI spec version the server speaks;
`unless_disconnected` awaits work before the response starts and cancels it if the client leaves
first. `sse_data` frames one JSON event.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from typing import TypeVar

import anyio
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

log = logging.getLogger("livesight.api")
T = TypeVar("T")
DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def sse_data(obj: object, *, event_id: str | None = None) -> bytes:
    """One `data:` event holding `obj` as compact JSON (with an `id:` line when given)."""
    data = b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"
    return (f"id: {event_id}\n".encode() + data) if event_id is not None else data


class EventStream(StreamingResponse):
    """An SSE response that ends, closing its body iterator, when the client disconnects."""

    def __init__(
        self,
        content: AsyncIterable[bytes],
        *,
        headers: Mapping[str, str] | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`on_close` runs when the response is done, however it ended (even if the body never started)."""
        super().__init__(content, media_type="text/event-stream", headers={**(headers or {}), **SSE_HEADERS})
        self._on_close = on_close

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
            if self._on_close is not None:
                await self._on_close()


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T | None:
    """Await `work`, cancelling it if the client disconnects first; None then."""
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
