"""`GET /streams/{stream_id}/frames/{frame_index}`: one retained frame as `image/jpeg`.

Same auth, ownership and index rules as an `image_url` `frame_index` anchor (N ≥ 1 lifetime index,
0 the oldest retained frame, negative counted back from the newest), in the stream endpoints'
`{"detail": ...}` envelope: 404 unknown or another key's stream or no frame yet, 410 evicted, 409
not produced yet. `?max_side=N` scales the frame down (off the event loop) for thumbnails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from livesight.api.auth import Authenticate
from livesight.api.schemas import DetailError
from livesight.backends.imaging import resize_jpeg
from livesight.core.errors import StreamNotFound
from livesight.resolve.select import select_frame
from livesight.resolve.uri import Anchor, FrameRef
from livesight.store.keys import ApiKey
from livesight.streams.directory import StreamDirectory

_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
        "description": "The frame as a JPEG; X-Frame-Index and X-Frame-Timestamp-Ms name it",
    },
    401: {"model": DetailError, "description": "Missing, unknown or revoked API key"},
    404: {"model": DetailError, "description": "Unknown or ended stream, another key's stream, or no frame yet"},
    409: {"model": DetailError, "description": "The frame has not been produced yet"},
    410: {"model": DetailError, "description": "The frame was evicted"},
    422: {"description": "Invalid frame_index or max_side"},
    500: {"model": DetailError, "description": "Internal error (details in the server log)"},
}


def build_router(
    directory: StreamDirectory, authenticate: Authenticate, executor: Executor | None, *, jpeg_quality: int = 85
) -> APIRouter:
    router = APIRouter(tags=["streams"])
    auth = Depends(authenticate)

    @router.get(
        "/streams/{stream_id}/frames/{frame_index}",
        response_class=Response,
        responses=_RESPONSES,
        summary="Get one frame as JPEG",
    )
    async def get_frame(
        stream_id: str,
        frame_index: int,
        max_side: Annotated[int | None, Query(ge=16, le=8192, description="Scale down to this longest side")] = None,
        key: ApiKey = auth,
    ) -> Response:
        stream = directory.get(stream_id, key.owner)
        if not stream.active:
            raise StreamNotFound(f"stream {stream_id} has ended ({stream.end_reason}); its frames were freed")
        window = directory.window(stream)
        label = f"stream {stream.id}"
        ref = FrameRef(label, stream.id, Anchor("frame_index", frame_index, "frame_index"))
        index = select_frame(window, ref)
        assert window is not None
        info = window.info(index)
        loop = asyncio.get_running_loop()
        (jpeg,) = await window.jpegs([index], label)
        if max_side is not None:
            resize: Callable[[], bytes] = lambda: resize_jpeg(jpeg, max_side, jpeg_quality)  # noqa: E731
            jpeg = await loop.run_in_executor(executor, resize)
        return Response(
            jpeg,
            media_type="image/jpeg",
            headers={
                "x-frame-index": str(info.index),
                "x-frame-timestamp-ms": str(info.timestamp_ms),
                "x-frame-arrived-at-ms": str(info.arrived_at_ms),
                # A lifetime index always names the same pixels; relative ones move with the stream.
                "cache-control": "private, max-age=3600, immutable" if frame_index >= 1 else "no-store",
            },
        )

    return router
