"""The local stream registry seen only through `StreamDirectory`, and the GET /streams view built from it."""

from __future__ import annotations

from dataclasses import fields

import pytest

from livesight.api.schemas import PulledSource, StreamStatus
from livesight.api.stream_views import source_spec, stream_status
from livesight.buffer.pool import BufferPool
from livesight.core.clock import FakeClock
from livesight.core.errors import StreamLimitExceeded, StreamNotFound, StreamUnauthorized
from livesight.core.frame import BufferStats, IngestFrame, JpegPayload
from livesight.core.records import SourceSpec
from livesight.streams.directory import StreamDirectory
from livesight.streams.registry import RegistryLimits, StreamRegistry


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def directory(clock: FakeClock) -> StreamDirectory:
    return StreamRegistry(clock, BufferPool(clock), RegistryLimits(max_active_per_owner=2))


def push(directory: StreamDirectory, clock: FakeClock, stream_id: str, n: int) -> None:
    target = directory.ingest_target(stream_id)
    assert target is not None
    for i in range(n):
        clock.advance(100)
        target.push_frame(IngestFrame("s", i * 100.0, 64, 48, JpegPayload(b"\xff\xd8" + bytes(98))))


def test_facts_follow_the_buffer_and_the_publisher_while_active(directory: StreamDirectory, clock: FakeClock) -> None:
    stream = directory.create("key_a")
    assert directory.facts(stream).buffer == BufferStats() and directory.window(stream) is None
    target = directory.ingest_target(stream.id)
    assert target is not None
    target.publisher_connected("cam", codec="VP8")
    push(directory, clock, stream.id, 5)
    target.report_error("slow link")
    facts = directory.facts(stream)
    assert (facts.width, facts.height, facts.codec, facts.publisher_connected) == (64, 48, "VP8", True)
    assert (facts.last_error, facts.last_error_at_ms) == ("slow link", clock.now_ms())
    assert facts.buffer.last_frame_index == 4 and facts.buffer.first_available_frame_index == 0
    assert facts.buffer.retained_frame_count == 5 and facts.buffer.retained_bytes == 500
    assert facts.buffer.stream_time_ms == 400 and facts.buffer.recent_fps > 0
    window = directory.window(stream)
    assert window is not None and window.last_index == 4


def test_an_ended_stream_keeps_the_facts_it_had_when_it_ended(directory: StreamDirectory, clock: FakeClock) -> None:
    stream = directory.create("key_a")
    target = directory.ingest_target(stream.id)
    assert target is not None
    target.publisher_connected("cam", codec="H264")
    push(directory, clock, stream.id, 3)
    ended: list[str] = []
    directory.add_end_hook(ended.append)
    directory.end(stream, "deleted")
    target.publisher_disconnected("the server ended the stream")  # a late report from ingest
    clock.advance(60_000)
    facts = directory.facts(stream)
    assert ended == [stream.id] and directory.window(stream) is None
    assert facts.last_error is None and facts.publisher_connected is False and facts.codec == "H264"
    assert facts.buffer.last_frame_index == 2 and facts.buffer.retained_frame_count == 3
    assert facts.buffer.recent_fps == 0.0
    assert directory.ingest_target(stream.id) is None
    directory.end(stream, "expired")  # idempotent: the first reason stays
    assert directory.get(stream.id, "key_a").end_reason == "deleted" and ended == [stream.id]


def test_owner_scope_limits_and_lease(directory: StreamDirectory, clock: FakeClock) -> None:
    a = directory.create("key_a", source=SourceSpec("file", "clip.mp4"))
    b = directory.create("key_a")
    with pytest.raises(StreamLimitExceeded):
        directory.create("key_a")
    with pytest.raises(StreamUnauthorized):
        directory.get(a.id, "key_b")
    with pytest.raises(StreamNotFound, match="UUID"):
        directory.get("not-a-uuid", "key_a")
    clock.advance(299_000)
    directory.keepalive(a.id, "key_a")
    clock.advance(2_000)
    assert directory.reap() == [b.id] and a.active  # b's lease passed, a's was renewed
    assert [s.id for s in directory.owned("key_a")] == [a.id, b.id] and directory.active_count("key_a") == 1
    assert directory.end_all() == 1 and not directory.all_active()
    with pytest.raises(StreamNotFound, match="ended"):
        directory.get_active(a.id, "key_a")


def test_the_view_carries_every_field_of_the_wire_model(directory: StreamDirectory, clock: FakeClock) -> None:
    source = PulledSource(type="rtsp", url="rtsp://127.0.0.1/cam")
    stream = directory.create("key_a", source=source_spec(source))
    push(directory, clock, stream.id, 2)
    facts = directory.facts(stream)
    live = stream_status(stream, facts).model_dump()
    assert set(live) == set(StreamStatus.model_fields)
    for field in fields(BufferStats):
        assert live[field.name] == getattr(facts.buffer, field.name)
    assert live["source"] == {"type": "rtsp", "url": "rtsp://127.0.0.1/cam"} and live["audio"] is False
    assert live["state"] == "active" and live["expires_at_ms"] == stream.expires_at_ms
    directory.end(stream, "source_failed")
    gone = stream_status(stream, directory.facts(stream)).model_dump()
    assert gone["state"] == "ended" and gone["end_reason"] == "source_failed" and gone["expires_at_ms"] is None
    assert gone["last_frame_index"] == 1 and gone["recent_fps"] == 0.0 and gone["publisher_connected"] is False
