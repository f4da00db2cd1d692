"""The frame tap keeps received frames encoded: sizes from keyframes, nothing before the first keyframe,
frames after a loss marked damaged until the next keyframe; it stops on aiortc's end-of-track signal only
(any other exception from `recv` is a bug and propagates)."""

from __future__ import annotations

import asyncio
from typing import Any

import av
import pytest
from aiortc.mediastreams import MediaStreamError

from livesight.core.frame import EncodedPayload
from livesight.ingest.passthrough import Received
from livesight.ingest.tap import FrameTap
from tests.ingest.fakes import RecordingTarget
from tests.support.encoded import clip


def tap(max_side: int = 1280) -> tuple[FrameTap, RecordingTarget]:
    target = RecordingTarget()
    return FrameTap(target, session="PA_x/TR_y", max_side=max_side), target


async def raising(exc: BaseException) -> Any:
    raise exc


def received(codec: str, datas: tuple[bytes, ...], lost_before: int | None = None) -> list[Received]:
    return [Received(codec, d, i * 3000, i == lost_before) for i, d in enumerate(datas)]


def run(t: FrameTap, items: list[object]) -> None:
    async def recv() -> object:
        if items:
            return items.pop(0)
        raise MediaStreamError

    asyncio.run(asyncio.wait_for(t.run(recv), 5))


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_frames_are_kept_encoded_with_their_gops_size(codec: str) -> None:
    t, target = tap(max_side=160)
    datas = clip(codec, 40)
    run(t, list(received(codec, datas)))
    assert len(target.frames) == 40 and t.keyframes == 2
    payloads = [f.payload for f in target.frames]
    assert all(isinstance(p, EncodedPayload) for p in payloads)
    assert [i for i, p in enumerate(payloads) if isinstance(p, EncodedPayload) and p.keyframe] == [0, 30]
    assert {(f.width, f.height) for f in target.frames} == {(160, 90)}  # 320x180 capped at 160
    assert [f.media_ms for f in target.frames[:3]] == [0.0, 1000 / 30, 2000 / 30]


def test_nothing_is_kept_before_the_first_keyframe() -> None:
    t, target = tap()
    datas = clip("vp8", 40)
    run(t, list(received("vp8", datas[10:])))  # joined mid-GOP: frames 10..29 have nothing to decode from
    assert (t.dropped, target.dropped, len(target.frames)) == (20, 20, 10)
    assert isinstance(target.frames[0].payload, EncodedPayload) and target.frames[0].payload.keyframe


def test_frames_after_a_loss_are_damaged_until_the_next_keyframe() -> None:
    t, target = tap()
    datas = clip("h264", 60)
    run(t, list(received("h264", datas, lost_before=12)))
    damaged = [i for i, f in enumerate(target.frames) if isinstance(f.payload, EncodedPayload) and f.payload.damaged]
    assert damaged == list(range(12, 30))
    assert t.wants_keyframe is False  # the keyframe at 30 ended it


def test_end_of_track_stops_the_tap() -> None:
    t, _ = tap()
    asyncio.run(asyncio.wait_for(t.run(lambda: raising(MediaStreamError())), 5))
    assert t.received == 0


def test_a_bug_in_recv_is_not_taken_for_the_end_of_the_track() -> None:
    with pytest.raises(ZeroDivisionError):
        asyncio.run(asyncio.wait_for(tap()[0].run(lambda: raising(ZeroDivisionError())), 5))


def test_decoded_frames_mean_the_passthrough_is_missing_and_say_so() -> None:
    """If aiortc decoded anyway (a version that moved its decoder factory), the stream says so, once."""
    t, target = tap()
    frame = av.VideoFrame(64, 48, "yuv420p")
    run(t, [frame, frame, av.Packet(b"x")])
    assert t.received == 0 and len(target.errors) == 1
    assert "decodes video itself" in str(target.errors[0])
