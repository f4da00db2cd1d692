"""The recorder paths below the API, without a server: codecs, publishers, evictions, encode time, loop lag."""

from __future__ import annotations

import asyncio
import time

import av
import numpy as np
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from livesight.api.metrics import Metrics
from livesight.buffer.pool import BufferLimits, BufferPool
from livesight.codec.jpeg import FrameEncoder
from livesight.core.clock import FakeClock
from livesight.core.frame import IngestFrame, JpegPayload
from livesight.streams.registry import StreamRegistry


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_codecs_publishers_and_evictions_are_counted() -> None:
    clock = FakeClock()
    metrics = Metrics()
    pool = BufferPool(clock, BufferLimits(retention_ms=1000))
    registry = StreamRegistry(clock, pool, recorder=metrics)
    metrics.watch(registry, pool)
    stream = registry.create("owner-a")
    target = registry.ingest_target(stream.id)
    assert target is not None
    target.publisher_connected("cam", codec="VP8")
    for i in range(10):  # one frame every 300 ms, 1 s retention: frames 0..6 age out as 7..9 arrive
        target.push_frame(IngestFrame("s", i * 300.0, 4, 4, JpegPayload(b"x" * 100)))
        clock.advance(300)
    s = samples(metrics)
    assert s[("livesight_ingest_frames_kept_total", (("codec", "vp8"),))] == 10
    assert s[("livesight_ingest_active_publishers", ())] == 1
    evicted = s[("livesight_buffer_evicted_frames_total", ())]
    retained = s[("livesight_buffer_retained_frames", ())]
    assert evicted > 0 and evicted + retained == 10
    registry.end(stream, "expired")
    s = samples(metrics)
    assert s[("livesight_buffer_evicted_frames_total", ())] == evicted  # freeing an ended stream is no eviction
    assert s[("livesight_buffer_retained_frames", ())] == 0
    assert s[("livesight_ingest_active_publishers", ())] == 0
    assert s[("livesight_streams_ended_total", (("reason", "expired"),))] == 1


def test_each_encoded_frame_is_timed() -> None:
    metrics = Metrics()
    encoder = FrameEncoder(1, max_side=64, quality=80, recorder=metrics)
    frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), dtype=np.uint8), format="rgb24")

    async def encode() -> None:
        await encoder.submit(frame)
        await encoder.submit(frame)

    try:
        asyncio.run(encode())
    finally:
        encoder.close()
    assert samples(metrics)[("livesight_ingest_frame_encode_seconds_count", ())] == 2


def test_a_blocked_loop_shows_as_lag() -> None:
    metrics = Metrics()

    async def block() -> None:
        watcher = asyncio.create_task(metrics.watch_loop_lag(interval_s=0.01))
        await asyncio.sleep(0)  # the watcher's timer starts
        time.sleep(0.2)  # noqa: ASYNC251  (deliberate: the loop cannot wake the timer for 200 ms)
        for _ in range(100):
            await asyncio.sleep(0.01)
            if samples(metrics)[("livesight_event_loop_lag_seconds_count", ())] > 0:
                break
        watcher.cancel()

    asyncio.run(block())
    s = samples(metrics)
    assert s[("livesight_event_loop_lag_seconds_sum", ())] >= 0.15  # at least the blocked time, minus the interval


def test_frames_the_tap_drops_are_counted_per_codec() -> None:
    """Frames before a track's first keyframe cannot be decoded: the tap drops them and the scrape says so."""
    from livesight.ingest.passthrough import Received
    from livesight.ingest.tap import FrameTap
    from tests.support.encoded import clip

    clock = FakeClock()
    metrics = Metrics()
    registry = StreamRegistry(clock, BufferPool(clock, BufferLimits()), recorder=metrics)
    stream = registry.create("owner-a")
    target = registry.ingest_target(stream.id)
    assert target is not None
    target.publisher_connected("cam", codec="H264")
    datas = clip("h264", 30)[27:]  # three frames of a GOP whose keyframe never arrived

    async def offer_five() -> FrameTap:
        tap = FrameTap(target, "s", max_side=1280)
        for i, data in enumerate(datas):
            tap.offer(Received("h264", data, i * 3000, False))
        return tap

    tap = asyncio.run(offer_five())
    assert (tap.received, tap.dropped) == (3, 3)
    s = samples(metrics)
    assert s[("livesight_ingest_frames_dropped_total", (("codec", "h264"),))] == 3
    assert ("livesight_ingest_frames_kept_total", (("codec", "h264"),)) not in s
