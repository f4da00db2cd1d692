"""The viewer track's queue: GOP order, keyframe restarts, pauses, codec changes (no network here)."""

from __future__ import annotations

import asyncio
import fractions

import av
import pytest
from aiortc.mediastreams import MediaStreamError

from livesight.core.frame import EncodedPayload, FrameInfo, JpegPayload
from livesight.ingest.viewer import MAX_REPLAY_FRAMES, ViewerTrack
from tests.support.frames import text_jpeg


def info(i: int) -> FrameInfo:
    return FrameInfo(i, i * 40, 0, 64, 48)


def frame(i: int, *, key: bool = False, damaged: bool = False, codec: str = "vp8") -> EncodedPayload:
    return EncodedPayload(bytes([i % 256]) * 4, codec, keyframe=key, damaged=damaged)


class Calls:
    def __init__(self) -> None:
        self.keyframes = 0
        self.codec_changes = 0

    def ask(self) -> None:
        self.keyframes += 1

    def changed(self) -> None:
        self.codec_changes += 1


def track(calls: Calls, codec: str = "vp8", queue_frames: int = 4) -> ViewerTrack:
    return ViewerTrack("TR_test", codec, queue_frames=queue_frames, on_codec_change=calls.changed)


async def drain(t: ViewerTrack) -> list[int]:
    """The first bytes (= frame numbers) of what the track has queued now."""
    out = []
    while t._queue:
        packet = await t.recv()
        assert isinstance(packet, av.Packet) and packet.time_base == fractions.Fraction(1, 90_000)
        out.append(bytes(packet)[0])
    return out


def test_a_track_starts_at_a_keyframe_and_replays_the_current_gop() -> None:
    async def run() -> None:
        calls = Calls()
        t = track(calls, queue_frames=10)
        t.start([(info(i), frame(i, key=i == 5)) for i in range(5, 8)], calls.ask)
        t.offer(info(8), frame(8))
        assert await drain(t) == [5, 6, 7, 8] and calls.keyframes == 0
        packet = (t.offer(info(9), frame(9)), await t.recv())[1]
        assert packet.pts == 9 * 40 * 90  # stream-clock ms on the 90 kHz RTP clock

        late = track(calls)
        late.start([], calls.ask)  # nothing to replay: ask the publisher, wait for the keyframe
        assert calls.keyframes == 1
        late.offer(info(1), frame(1))
        late.offer(info(2), frame(2, key=True))
        assert await drain(late) == [2] and late.dropped == 1

    asyncio.run(run())


def test_a_long_gop_is_not_replayed() -> None:
    calls = Calls()
    t = track(calls, queue_frames=MAX_REPLAY_FRAMES + 10)
    gop = [(info(i), frame(i, key=i == 0)) for i in range(MAX_REPLAY_FRAMES + 1)]
    t.start(gop, calls.ask)
    assert not t._queue and calls.keyframes == 1 and t.waiting_keyframe


def test_a_viewer_that_falls_behind_skips_to_the_next_keyframe() -> None:
    async def run() -> None:
        calls = Calls()
        t = track(calls, queue_frames=3)
        t.start([], calls.ask)
        for i in range(6):  # a keyframe, then more than the queue holds: nobody reads
            t.offer(info(i), frame(i, key=i == 0))
        assert t.waiting_keyframe and not t._queue and calls.keyframes == 2
        t.offer(info(6), frame(6))
        t.offer(info(7), frame(7, key=True))
        t.offer(info(8), frame(8))
        assert await drain(t) == [7, 8]

    asyncio.run(run())


def test_damage_pli_and_pause_restart_at_a_keyframe() -> None:
    async def run() -> None:
        calls = Calls()
        t = track(calls, queue_frames=10)
        t.start([(info(0), frame(0, key=True))], calls.ask)
        t.offer(info(1), frame(1, damaged=True))
        assert t.waiting_keyframe and calls.keyframes == 1
        t.offer(info(2), frame(2, key=True))
        t.want_keyframe()  # the viewer sent a PLI
        assert t.waiting_keyframe and calls.keyframes == 2 and not t._queue
        t.offer(info(3), frame(3, key=True))
        t.pause(True)
        t.offer(info(4), frame(4, key=True))
        assert not t._queue
        t.pause(False)
        t.offer(info(5), frame(5))
        t.offer(info(6), frame(6, key=True))
        assert await drain(t) == [6]

    asyncio.run(run())


def test_a_codec_change_asks_the_viewer_to_rejoin() -> None:
    calls = Calls()
    t = track(calls)
    t.start([], calls.ask)
    t.offer(info(0), frame(0, key=True, codec="h264"))
    assert calls.codec_changes == 1 and not t._queue


def test_jpeg_frames_keep_only_the_newest_and_become_video_frames() -> None:
    async def run() -> None:
        calls = Calls()
        t = track(calls, codec="jpeg")
        jpeg = JpegPayload(text_jpeg("hi", 64, 48))
        for i in range(5):
            t.offer(info(i), jpeg)
        assert len(t._queue) == 2 and t.dropped == 3
        video = await t.recv()
        assert isinstance(video, av.VideoFrame) and (video.width, video.height) == (64, 48)
        assert video.pts == 3 * 40 * 90

    asyncio.run(run())


@pytest.mark.parametrize("codec", ["vp8", "jpeg"])
def test_a_stopped_track_ends(codec: str) -> None:
    async def run() -> None:
        t = track(Calls(), codec=codec)
        waiting = asyncio.ensure_future(t.recv())
        await asyncio.sleep(0)
        t.stop()
        with pytest.raises(MediaStreamError):
            await asyncio.wait_for(waiting, 1)

    asyncio.run(run())
