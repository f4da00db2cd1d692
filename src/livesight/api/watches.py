"""Watch endpoints (docs/watches.md): create, list, inspect, pause/resume, end; results and their SSE.

Owner-scoped like streams: another key's watch is 404, as is an unknown one. The SSE stream sends
each recorded result as `id: <seq>` / `event: result`, resumes after `Last-Event-ID` (or `?after=`),
sends a `: ping` comment every `_PING_S` so proxies keep it open, and ends with `event: end` (the
watch) once the watch has ended and every result was sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from starlette.responses import StreamingResponse

from livesight.api.auth import Authenticate
from livesight.api.cluster_watches import RemoteWatches
from livesight.api.internal import FORWARDED
from livesight.api.schemas import DetailError, ValidationErrorEnvelope
from livesight.api.sse import EventStream, sse_data
from livesight.api.watch_schemas import (
    WATCH_EVENT_SCHEMA,
    ResultList,
    WatchCreateRequest,
    WatchList,
    WatchOut,
    WatchUpdate,
)
from livesight.core.errors import RequestInvalid, WatchNotFound
from livesight.store.keys import ApiKey
from livesight.watches.model import Watch, WatchSpec
from livesight.watches.service import WatchService

_PING_S = 15.0


def _err(description: str) -> dict[str, object]:
    return {"model": DetailError, "description": description}


_ERRORS: dict[int | str, dict[str, object]] = {
    401: _err("Missing, unknown or revoked API key"),
    413: _err("Request body too large"),
    422: {"model": ValidationErrorEnvelope, "description": "Request validation failed"},
    500: _err("Internal error (details in the server log)"),
}
_NOT_FOUND: dict[int | str, dict[str, object]] = {404: _err("Unknown watch, or another key's watch")}


def build_router(service: WatchService, authenticate: Authenticate, remote: RemoteWatches | None = None) -> APIRouter:
    """`remote`: a cluster's watches on other nodes (api/cluster_watches.py); a request for a watch another
    node runs reaches it through the ForwardingMiddleware, and lands here only when that node could not be
    reached (then the shared record answers)."""
    router = APIRouter(tags=["watches"], responses=_ERRORS)
    auth = Depends(authenticate)

    async def elsewhere(watch_id: str, owner: str, exc: WatchNotFound) -> dict[str, object]:
        if remote is None:
            raise exc
        return await remote.lost(watch_id, owner)

    @router.post(
        "/watches",
        status_code=201,
        response_model=WatchOut,
        responses={
            400: _err(
                "An invalid ovs:// URI, a request without one, media its model does not take, expires_at_ms not in "
                "the future, or a webhook URL that is malformed or refused by the outbound policy"
            ),
            404: _err("A stream of the request is unknown, ended, or another key's; or its model is unknown"),
            429: _err("Too many watches that have not ended for this key (max_active_watches_per_key)"),
        },
        summary="Start a watch: a chat request asked at an interval",
    )
    async def create_watch(body: WatchCreateRequest, key: ApiKey = auth) -> dict[str, object]:
        spec = WatchSpec(
            interval_ms=body.interval_ms,
            only_on_new_frames=body.only_on_new_frames,
            min_change=body.min_change,
            trigger=body.trigger.model_dump(exclude_unset=True, mode="json") if body.trigger else None,
            webhook_url=body.webhook.url if body.webhook else None,
            webhook_secret=body.webhook.secret if body.webhook else None,
            expires_at_ms=body.expires_at_ms,
        )
        watch = await service.create(key.owner, body.request.model_dump(exclude_unset=True, mode="json"), spec)
        shown = watch.public()
        if watch.webhook is not None:
            shown["webhook"] = dict(watch.webhook)  # the secret, this once
        return shown

    @router.get("/watches", response_model=WatchList, summary="List your watches (newest first)")
    async def list_watches(request: Request, key: ApiKey = auth) -> dict[str, object]:
        shown = [w.public() for w in service.owned(key.owner)]
        if remote is not None and not request.scope.get(FORWARDED):  # the other nodes' too, newest first
            here = {w["id"] for w in shown}
            others = await remote.elsewhere(key.owner, request.headers.get("authorization"))
            shown += [w for w in others if w.get("id") not in here]
            shown.sort(key=lambda w: (_int(w.get("created_at_ms")), str(w.get("id"))), reverse=True)
        return {"object": "list", "data": shown}

    @router.get("/watches/{watch_id}", response_model=WatchOut, responses=_NOT_FOUND, summary="Inspect a watch")
    async def get_watch(watch_id: str, key: ApiKey = auth) -> dict[str, object]:
        try:
            return service.get(watch_id, key.owner).public()
        except WatchNotFound as exc:
            return await elsewhere(watch_id, key.owner, exc)

    @router.patch(
        "/watches/{watch_id}",
        response_model=WatchOut,
        responses={**_NOT_FOUND, 400: _err("The watch has ended")},
        summary="Pause, resume, or change the interval",
    )
    async def update_watch(watch_id: str, body: WatchUpdate, key: ApiKey = auth) -> dict[str, object]:
        try:
            watch = service.get(watch_id, key.owner)
        except WatchNotFound as exc:
            shown = await elsewhere(watch_id, key.owner, exc)  # its node is lost: it has ended
            if body.state is None and body.interval_ms is None:
                return shown
            raise RequestInvalid(
                f"watch {watch_id} has ended ({shown.get('end_reason')}): it cannot be changed"
            ) from None
        await service.update(watch, state=body.state, interval_ms=body.interval_ms)
        return watch.public()

    @router.delete(
        "/watches/{watch_id}", response_model=WatchOut, responses=_NOT_FOUND, summary="End a watch (idempotent)"
    )
    async def delete_watch(watch_id: str, key: ApiKey = auth) -> dict[str, object]:
        try:
            watch = service.get(watch_id, key.owner)
        except WatchNotFound as exc:
            return await elsewhere(watch_id, key.owner, exc)  # its node is lost: ended already
        return (await service.delete(watch)).public()

    @router.get(
        "/watches/{watch_id}/results",
        response_model=ResultList,
        responses=_NOT_FOUND,
        summary="Recorded results after a seq (polling)",
    )
    async def list_results(
        watch_id: str,
        after: Annotated[int, Query(ge=0, le=2**53, description="Only results with a larger seq")] = 0,
        limit: Annotated[int, Query(ge=1, le=1000, description="Page size")] = 100,
        key: ApiKey = auth,
    ) -> dict[str, object]:
        try:
            watch = service.get(watch_id, key.owner)
        except WatchNotFound as exc:  # its node is lost, and its results with it
            shown = await elsewhere(watch_id, key.owner, exc)
            return {"object": "list", "data": [], "has_more": False, "last_seq": _int(shown.get("last_seq"))}
        page = service.results(watch, after, limit + 1)
        return {"object": "list", "data": page[:limit], "has_more": len(page) > limit, "last_seq": watch.seq}

    @router.get(
        "/watches/{watch_id}/events",
        responses={
            **_NOT_FOUND,
            200: {
                "description": "An SSE stream: one `result` event per recorded result, `end` when the watch ended",
                "content": {"text/event-stream": {"schema": WATCH_EVENT_SCHEMA}},
            },
        },
        response_class=StreamingResponse,  # documents the 200 as the SSE content above, without JSON
        summary="Results as server-sent events (resume with Last-Event-ID)",
    )
    async def watch_events(
        watch_id: str,
        after: Annotated[int, Query(ge=0, le=2**53, description="Start after this seq")] = 0,
        last_event_id: Annotated[
            str | None,
            Header(max_length=100, description="The last seq received; wins over `after` (ignored unless a number)"),
        ] = None,
        key: ApiKey = auth,
    ) -> EventStream:
        try:
            watch = service.get(watch_id, key.owner)
        except WatchNotFound as exc:  # its node is lost: the end, at once
            return EventStream(_lost_events(await elsewhere(watch_id, key.owner, exc)))
        digits = (last_event_id or "").strip()
        start = int(digits) if digits.isascii() and digits.isdigit() and len(digits) <= 15 else after
        return EventStream(_events(service, watch, start))

    return router


def _event(name: str, payload: object, event_id: int | None = None) -> bytes:
    """A named event (`event: result` / `end`) around sse_data's framing."""
    return f"event: {name}\n".encode() + sse_data(payload, event_id=None if event_id is None else str(event_id))


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


async def _lost_events(shown: dict[str, object]) -> AsyncIterator[bytes]:
    yield b": watching\n\n"
    yield _event("end", shown)


async def _events(service: WatchService, watch: Watch, after: int) -> AsyncIterator[bytes]:
    yield b": watching\n\n"
    while True:
        results = await service.wait_results(watch, after, _PING_S)
        for result in results:
            after = result["seq"] or after
            yield _event("result", result, after)
        if not results:
            if watch.state == "ended":
                yield _event("end", watch.public())
                return
            yield b": ping\n\n"
