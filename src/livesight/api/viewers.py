"""`POST /streams/{stream_id}/viewer-token` (CONTRACT §9, Overshoot's): watch a stream live.

Owner only: another key's stream is 404, like every stream endpoint, and so is an ended one (its
message says it has ended). The
token joins the stream's room on the embedded endpoint and can only subscribe (ingest/tokens.py);
`url` is the same LiveKit URL publishers get. Pulled sources are viewable the same way.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends, Request

from livesight.api.auth import Authenticate
from livesight.api.schemas import DetailError, View, ViewerToken
from livesight.ingest.tokens import VIEWER_TTL_SECONDS, TokenIssuer
from livesight.store.keys import ApiKey
from livesight.streams.directory import StreamDirectory

UrlFor = Callable[[Request], str]


def build_router(
    directory: StreamDirectory, authenticate: Authenticate, tokens: TokenIssuer, url_for: UrlFor
) -> APIRouter:
    router = APIRouter(tags=["streams"])

    @router.post(
        "/streams/{stream_id}/viewer-token",
        response_model=ViewerToken,
        responses={
            401: {"model": DetailError, "description": "Missing, unknown or revoked API key"},
            404: {"model": DetailError, "description": "Unknown, ended, or another key's stream"},
        },
        summary="Get a subscribe-only LiveKit token to watch the stream",
    )
    async def viewer_token(stream_id: str, request: Request, key: ApiKey = Depends(authenticate)) -> ViewerToken:
        stream = directory.get_active(stream_id, key.owner)
        return ViewerToken(
            view=View(url=url_for(request), token=tokens.viewer_token(stream.id), expires_in_seconds=VIEWER_TTL_SECONDS)
        )

    return router
