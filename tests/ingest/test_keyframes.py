"""Keyframe requests (RTCP PLI): every keyframe_interval_s, at once while a GOP is damaged or no keyframe
has come, and a stream error when video arrives but no keyframe ever does."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import cast

import pytest
from aiortc import RTCRtpReceiver

from livesight.ingest.passthrough import Received
from livesight.ingest.tap import FrameTap
from tests.ingest.test_session import run_session
from tests.support.encoded import clip

pytestmark = pytest.mark.timeout(20)


class FakeReceiver:
    """The two things the keyframe loop uses of aiortc's RTCRtpReceiver."""

    def __init__(self) -> None:
        self.plis: list[float] = []

    def getSynchronizationSources(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(source=1234)]

    async def _send_rtcp_pli(self, ssrc: int) -> None:
        assert ssrc == 1234
        self.plis.append(time.monotonic())


def test_a_publisher_that_never_sends_a_keyframe_is_asked_and_reported() -> None:
    receiver = FakeReceiver()
    p_frames = clip("vp8", 30)[1:]

    async def body(session, channel, target) -> None:  # type: ignore[no-untyped-def]
        tap = FrameTap(target, "s", max_side=1280)
        loop = asyncio.create_task(session._keyframes(cast(RTCRtpReceiver, receiver), tap))
        for i, data in enumerate(p_frames):
            tap.offer(Received("vp8", data, i * 3000, False))
            await asyncio.sleep(0.03)
        loop.cancel()
        assert len(target.frames) == 0 and tap.dropped == len(p_frames)
        assert len(receiver.plis) >= 2  # asked at once, and again (at most one per min gap)
        assert all(b - a >= 0.09 for a, b in zip(receiver.plis, receiver.plis[1:], strict=False))
        errors = [e for e in target.errors if e]
        assert errors and "no keyframe" in errors[-1] and "ignores keyframe requests" in errors[-1]

    run_session(body, no_frame_timeout_s=0.5, keyframe_interval_s=0.2)


def test_keyframes_are_asked_for_when_the_last_one_is_interval_old() -> None:
    receiver = FakeReceiver()
    frames = clip("vp8", 30, gop=1000)  # one keyframe, then only P-frames: a publisher that never makes more

    async def body(session, channel, target) -> None:  # type: ignore[no-untyped-def]
        tap = FrameTap(target, "s", max_side=1280)
        loop = asyncio.create_task(session._keyframes(cast(RTCRtpReceiver, receiver), tap))
        tap.offer(Received("vp8", frames[0], 0, False))
        await asyncio.sleep(0.25)
        assert receiver.plis == []  # the keyframe is fresh: nothing to ask
        for i, data in enumerate(frames[1:], start=1):
            tap.offer(Received("vp8", data, i * 3000, False))
            await asyncio.sleep(0.03)
        loop.cancel()
        assert len(receiver.plis) >= 2  # the keyframe aged past 0.9 x 0.4 s, asked every min gap (0.2 s)
        assert len(target.frames) == 30 and not [e for e in target.errors if e]

    run_session(body, keyframe_interval_s=0.4)
