"""Helpers for real-client tests: publish the numbered test pattern with the livekit SDK, read frames
back from the server's buffer."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import simplejpeg
from livekit import rtc

from livesight.ingest.pattern import TestPattern, read_frame_number
from tests.support.server import LiveServer

PREROLL_BASE = 60000
"""Warm-up frames are numbered from here: media needs a moment to flow after publish_track returns
(ICE, DTLS, first keyframe), so frames captured then are not counted as sent."""


@dataclass
class Published:
    sent: list[int] = field(default_factory=list)
    connect_error: str | None = None
    publish_error: str | None = None
    disconnected: bool = False


async def publish_pattern(
    url: str,
    token: str,
    *,
    seconds: float,
    width: int = 640,
    height: int = 480,
    fps: float = 15,
    options: rtc.TrackPublishOptions | None = None,
    room_options: rtc.RoomOptions | None = None,
    capture: bool = True,
    connect_timeout: float = 20,
    preroll: float = 1.0,
) -> Published:
    """Publish `preroll` seconds of warm-up frames, then frames numbered 0, 1, 2, ... for `seconds`."""
    out = Published()
    room = rtc.Room()

    @room.on("disconnected")
    def _on_disconnected(*_: Any) -> None:
        out.disconnected = True

    try:
        await asyncio.wait_for(
            room.connect(url, token, room_options or rtc.RoomOptions(auto_subscribe=False)), connect_timeout
        )
    except (rtc.ConnectError, TimeoutError) as exc:
        out.connect_error = str(exc) or type(exc).__name__
        return out
    source = rtc.VideoSource(width, height)
    track = rtc.LocalVideoTrack.create_video_track("camera", source)
    pattern = TestPattern(width, height)
    try:
        opts = options or rtc.TrackPublishOptions(
            source=rtc.TrackSource.SOURCE_CAMERA,
            simulcast=False,
            video_codec=rtc.VideoCodec.VP8,
            degradation_preference=rtc.DegradationPreference.MAINTAIN_RESOLUTION.value,
        )
        try:
            await room.local_participant.publish_track(track, opts)
        except Exception as exc:
            out.publish_error = str(exc) or type(exc).__name__
        start = time.monotonic()
        warmup = round(preroll * fps) if capture else 0
        n = 0
        while time.monotonic() - start < seconds + warmup / fps:
            delay = start + n / fps - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if capture:
                number = PREROLL_BASE + n if n < warmup else n - warmup
                frame = rtc.VideoFrame(width, height, rtc.VideoBufferType.I420, pattern.render(number))
                source.capture_frame(frame, timestamp_us=int(time.time() * 1_000_000))
                if n >= warmup:
                    out.sent.append(number)
            n += 1
        await asyncio.sleep(0.5)  # let the last frames arrive
    finally:
        await room.disconnect()
        await source.aclose()
    return out


@dataclass(frozen=True)
class ReadFrame:
    index: int
    timestamp_ms: int
    arrived_at_ms: int
    width: int
    height: int
    number: int | None


def read_frames(server: LiveServer, stream_id: str) -> list[ReadFrame]:
    """Every retained frame of a stream with the pattern number read back from its JPEG."""

    async def snapshot() -> list[tuple[Any, bytes]]:
        registry = server.components.registry
        stream = registry._streams[stream_id]
        window = registry.window(stream)
        if window is None:
            return []
        infos = window.infos()
        return list(zip(infos, await window.jpegs([i.index for i in infos], "test"), strict=True))

    out = []
    for info, jpeg in server.call(snapshot):
        luma = simplejpeg.decode_jpeg(jpeg, colorspace="GRAY")[:, :, 0]
        out.append(
            ReadFrame(
                info.index, info.timestamp_ms, info.arrived_at_ms, info.width, info.height, read_frame_number(luma)
            )
        )
    return out


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
