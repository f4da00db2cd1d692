from __future__ import annotations

from livesight.core.feed import LiveFeed
from livesight.core.frame import EncodedPayload, FrameInfo, FramePayload, JpegPayload


def info(i: int) -> FrameInfo:
    return FrameInfo(i, i * 33, i * 33, 640, 480)


def vp8(key: bool) -> EncodedPayload:
    return EncodedPayload(b"x", "vp8", keyframe=key)


def test_the_feed_keeps_the_current_gop_and_calls_subscribers_in_order() -> None:
    feed = LiveFeed()
    seen: list[int] = []
    feed.publish(info(0), vp8(False))  # before any keyframe: not a GOP
    assert feed.current_gop() == [] and feed.codec == "vp8"
    unsubscribe = feed.subscribe(lambda i, p: seen.append(i.index))
    for n, key in [(1, True), (2, False), (3, False)]:
        feed.publish(info(n), vp8(key))
    assert [i.index for i, _ in feed.current_gop()] == [1, 2, 3]
    feed.publish(info(4), vp8(True))
    assert [i.index for i, _ in feed.current_gop()] == [4]
    unsubscribe()
    feed.publish(info(5), vp8(False))
    assert seen == [1, 2, 3, 4] and feed.subscribers == 0


def test_a_codec_change_starts_over_and_jpeg_frames_are_gops_of_one() -> None:
    feed = LiveFeed()
    feed.publish(info(0), vp8(True))
    feed.publish(info(1), EncodedPayload(b"y", "h264", keyframe=False))
    assert feed.current_gop() == [] and feed.codec == "h264"
    jpeg: FramePayload = JpegPayload(b"j")
    feed.publish(info(2), jpeg)
    feed.publish(info(3), jpeg)
    assert [i.index for i, _ in feed.current_gop()] == [3] and feed.codec == "jpeg"
    feed.close()
    assert feed.current_gop() == [] and feed.subscribers == 0
