"""Stream endpoints (CONTRACT §3): create, list, inspect, keep alive, delete.

The listing's `after` cursor is opaque: it encodes the last item's position in the listing order
(section, time, id), not a lookup of that stream, so a page boundary stays put when the stream it
names ends or is forgotten: no item is skipped, and an active stream that ends while a client pages
can appear once more among the tombstones.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request

from livesight.api.auth import Authenticate
from livesight.api.schemas import (
    DetailError,
    Keepalive,
    Publish,
    StreamCreated,
    StreamCreateRequest,
    StreamDeleted,
    StreamList,
    StreamStatus,
    ValidationErrorEnvelope,
)
from livesight.api.stream_views import source_spec, stream_status
from livesight.core.errors import RequestInvalid
from livesight.store.keys import ApiKey
from livesight.streams.directory import StreamDirectory
from livesight.streams.stream import Stream, list_key

PublishFactory = Callable[[Stream, Request], Publish | None]
SourceStarter = Callable[[Stream], None]

_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": DetailError, "description": "Missing, unknown or revoked API key"},
    413: {"model": DetailError, "description": "Request body too large"},
    422: {"model": ValidationErrorEnvelope, "description": "Request validation failed"},
    500: {"model": DetailError, "description": "Internal error (details in the server log)"},
}
_NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {
        "model": DetailError,
        "description": "Unknown stream, another key's stream, or an expired tombstone",
    }
}


def build_router(
    directory: StreamDirectory,
    authenticate: Authenticate,
    publish_for: PublishFactory,
    start_source: SourceStarter,
) -> APIRouter:
    router = APIRouter(tags=["streams"], responses=_ERRORS)
    auth = Depends(authenticate)

    def lookup(stream_id: str, key: ApiKey, *, active: bool) -> Stream:
        # Another owner's stream raises StreamUnauthorized, which api.errors reports as 404 here.
        return directory.get_active(stream_id, key.owner) if active else directory.get(stream_id, key.owner)

    @router.post(
        "/streams",
        status_code=201,
        response_model=StreamCreated,
        responses={
            429: {"model": DetailError, "description": "Too many active streams for this key"},
            400: {"model": DetailError, "description": "Unsupported pulled source"},
        },
        summary="Create a stream",
    )
    async def create_stream(
        request: Request, body: Annotated[StreamCreateRequest | None, Body()] = None, key: ApiKey = auth
    ) -> StreamCreated:
        source = source_spec(body.source if body else None)
        stream = directory.create(key.owner, source=source)
        try:
            start_source(stream)  # a pulled source, or the gateway into the user's LiveKit server
        except Exception:
            directory.end(stream, "deleted")
            raise
        await directory.saved()  # on disk before the client learns the id
        return StreamCreated(
            id=stream.id,
            state="active",
            publish=publish_for(stream, request),
            expires_at_ms=stream.expires_at_ms,
            ttl_seconds=stream.ttl_seconds,
        )

    @router.get(
        "/streams",
        response_model=StreamList,
        responses={400: {"model": DetailError, "description": "Malformed `after` cursor"}},
        summary="List your streams",
    )
    async def list_streams(
        limit: Annotated[int, Query(ge=1, le=200, description="Page size")] = 50,
        after: Annotated[
            str | None, Query(max_length=200, description="`next_after` of the previous page (opaque)")
        ] = None,
        key: ApiKey = auth,
    ) -> StreamList:
        streams = directory.owned(key.owner)
        if after is not None:
            position = decode_cursor(after)
            streams = [s for s in streams if list_key(s) > position]
        page = streams[:limit]
        has_more = len(streams) > limit
        return StreamList(
            data=[stream_status(s, directory.facts(s)) for s in page],
            has_more=has_more,
            next_after=encode_cursor(list_key(page[-1])) if has_more else None,
        )

    @router.get("/streams/{stream_id}", response_model=StreamStatus, responses=_NOT_FOUND, summary="Inspect a stream")
    async def get_stream(stream_id: str, key: ApiKey = auth) -> StreamStatus:
        stream = lookup(stream_id, key, active=False)
        return stream_status(stream, directory.facts(stream))

    @router.post(
        "/streams/{stream_id}/keepalive",
        response_model=Keepalive,
        responses=_NOT_FOUND,
        summary="Renew the lease (and the publish token)",
    )
    async def keepalive(stream_id: str, request: Request, key: ApiKey = auth) -> Keepalive:
        stream = directory.keepalive(stream_id, key.owner)
        await directory.saved()
        return Keepalive(
            id=stream.id,
            expires_at_ms=stream.expires_at_ms,
            ttl_seconds=stream.ttl_seconds,
            stream_time_ms=directory.facts(stream).buffer.stream_time_ms,
            publish=publish_for(stream, request),
        )

    @router.delete("/streams/{stream_id}", response_model=StreamDeleted, responses=_NOT_FOUND, summary="End a stream")
    async def delete_stream(stream_id: str, key: ApiKey = auth) -> StreamDeleted:
        stream = lookup(stream_id, key, active=False)
        directory.end(stream, "deleted")
        await directory.saved()
        return StreamDeleted(id=stream.id, deleted=True)

    return router


def encode_cursor(position: tuple[int, int, str]) -> str:
    raw = f"{position[0]}:{position[1]}:{position[2]}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        section, when, stream_id = raw.split(":", 2)
        return int(section), int(when), stream_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise RequestInvalid(
            "`after` is not a cursor from this listing: pass `next_after` of the previous page"
        ) from None
