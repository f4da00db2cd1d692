"""The frame tap stops on aiortc's end-of-track signal only; any other exception from `recv` is a bug and
propagates (it used to be swallowed as if the track had ended)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiortc.mediastreams import MediaStreamError

from livesight.core.frame import IngestTarget
from livesight.ingest.frames import FrameEncoder
from livesight.ingest.tap import FrameTap


def tap() -> FrameTap:
    target = cast(IngestTarget, SimpleNamespace(active=True, stream_id="s1"))
    return FrameTap(target, cast(FrameEncoder, None), session="PA_x/TR_y")


async def raising(exc: BaseException) -> Any:
    raise exc


def test_end_of_track_stops_the_tap() -> None:
    t = tap()
    asyncio.run(asyncio.wait_for(t.run(lambda: raising(MediaStreamError())), 5))
    assert t.received == 0


def test_a_bug_in_recv_is_not_taken_for_the_end_of_the_track() -> None:
    with pytest.raises(ZeroDivisionError):
        asyncio.run(asyncio.wait_for(tap().run(lambda: raising(ZeroDivisionError())), 5))


def test_only_video_frames_are_offered() -> None:
    """aiortc types `recv()` as any frame or packet; what is not a VideoFrame is not a picture to encode."""
    import av

    t = tap()
    items: list[object] = [av.AudioFrame(format="s16", layout="mono", samples=160), av.Packet(b"x")]

    async def recv() -> object:
        if items:
            return items.pop(0)
        raise MediaStreamError

    asyncio.run(asyncio.wait_for(t.run(recv), 5))
    assert (t.received, t.dropped, t.failed) == (0, 0, 0)
