"""Helpers for real-client tests: publish the numbered test pattern with the livekit SDK, read frames
back from the server's buffer."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
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


@dataclass
class Watched:
    """What a viewer saw: the pattern numbers of the frames it decoded, in order."""

    numbers: list[int | None] = field(default_factory=list)
    sizes: set[tuple[int, int]] = field(default_factory=set)
    connect_error: str | None = None
    subscribed: list[str] = field(default_factory=list)  # "identity/track_sid" of each track_subscribed
    disconnected: bool = False
    first_frame_after_s: float | None = None


async def watch_pattern(
    url: str, token: str, *, seconds: float, auto_subscribe: bool = True, stall_s: float = 0.0
) -> Watched:
    """Join as a viewer with the livekit SDK (`rtc.Room` + `rtc.VideoStream`) and read the number of every
    frame it receives for `seconds`. `stall_s`: stop reading that long after the first frame (a slow viewer)."""
    out = Watched()
    room = rtc.Room()
    started = time.monotonic()
    readers: list[asyncio.Task[None]] = []

    async def read(track: rtc.Track) -> None:
        stream = rtc.VideoStream(track, capacity=0)
        stalled = False
        try:
            async for event in stream:
                frame = event.frame.convert(rtc.VideoBufferType.I420)
                if out.first_frame_after_s is None:
                    out.first_frame_after_s = time.monotonic() - started
                    if stall_s:
                        stalled = True
                if stalled:
                    await asyncio.sleep(stall_s)
                    stalled = False
                luma = np.frombuffer(frame.data, np.uint8)[: frame.width * frame.height]
                out.numbers.append(read_frame_number(luma.reshape(frame.height, frame.width)))
                out.sizes.add((frame.width, frame.height))
        finally:
            await stream.aclose()

    @room.on("track_subscribed")
    def _on_track(track: rtc.Track, publication: rtc.RemoteTrackPublication, who: rtc.RemoteParticipant) -> None:
        out.subscribed.append(f"{who.identity}/{publication.sid}")
        if track.kind == rtc.TrackKind.KIND_VIDEO:
            readers.append(asyncio.ensure_future(read(track)))

    @room.on("disconnected")
    def _on_disconnected(*_: Any) -> None:
        out.disconnected = True

    try:
        await asyncio.wait_for(room.connect(url, token, rtc.RoomOptions(auto_subscribe=auto_subscribe)), 20)
    except (rtc.ConnectError, TimeoutError) as exc:
        out.connect_error = str(exc) or type(exc).__name__
        return out
    try:
        await asyncio.sleep(seconds)
    finally:
        await room.disconnect()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    return out
