"""The stream registry on a real SQLite store: what a restart (or a kill) keeps and how streams continue.

A "kill" here is building a second registry on the same file while the first one never closed or
checkpointed: exactly what the file holds after SIGKILL (tests/e2e/test_restart.py does the real one).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from livesight.buffer.pool import BufferPool
from livesight.core.clock import FakeClock
from livesight.core.errors import SegmentEmpty, StreamNotFound
from livesight.core.frame import FrameInfo, IngestFrame, JpegPayload
from livesight.core.records import SourceSpec, StreamRecord
from livesight.resolve.select import select_frame, select_segment
from livesight.resolve.uri import FrameRef, parse_frame_uri, parse_segment_uri
from livesight.store.streams import SQLiteStreamStore
from livesight.streams.durable import CLOCK_RESERVE_MS, INDEX_RESERVE
from livesight.streams.registry import RegistryLimits, StreamRegistry
from livesight.streams.stream import Stream


class Node:
    """One server process's registry on `path`; `kill()` drops it without closing anything."""

    def __init__(self, path: Path, clock: FakeClock, **limits: int) -> None:
        self.store = SQLiteStreamStore(path)
        self.registry = StreamRegistry(clock, BufferPool(clock), RegistryLimits(**limits), self.store)
        self.clock = clock

    def push(self, stream: Stream, n: int, *, step_ms: int = 33, session: str = "s") -> list[FrameInfo]:
        target = self.registry.ingest_target(stream.id)
        assert target is not None
        ring = self.registry.pool.ring(stream.id)
        media = float(ring.stream_time_ms)
        infos = []
        for _ in range(n):
            self.clock.advance(step_ms)
            media += step_ms
            target.push_frame(IngestFrame(session, media, 64, 48, JpegPayload(b"\xff\xd8jpeg")))
            newest = ring.newest
            assert newest is not None
            infos.append(newest)
        return infos


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "livesight.db"


def frame_ref(stream_id: str, query: str) -> FrameRef:
    return parse_frame_uri(f"ovs://streams/{stream_id}?{query}")


def test_active_stream_survives_a_kill_with_its_lease_and_continues_after_every_index(
    db: Path, clock: FakeClock
) -> None:
    a = Node(db, clock)
    stream = a.registry.create("key_a")
    a.registry.keepalive(stream.id, "key_a")
    deadline = stream.expires_at_ms
    before = a.push(stream, 10)
    a.registry.reap()  # a tick: checkpoint
    before += a.push(stream, 7)  # handed out after the last checkpoint
    clock.advance(2_000)
    b = Node(db, clock)  # the first never closed: a kill
    again = b.registry.get(stream.id, "key_a")
    assert again.active and again.expires_at_ms == deadline and again.ttl_seconds == 300
    assert b.registry.active_count("key_a") == 1
    status = b.registry.facts(again).buffer
    assert again.state == "active" and status.last_frame_index is None
    assert status.stream_time_ms >= before[-1].timestamp_ms
    after = b.push(again, 3)
    assert after[0].index > before[-1].index
    assert after[0].timestamp_ms > before[-1].timestamp_ms
    assert [i.index for i in after] == list(range(after[0].index, after[0].index + 3))
    assert after[0].index - before[-1].index <= INDEX_RESERVE  # the jump is at most one reserve


def test_a_burst_past_the_reserve_without_any_tick_still_continues_after_it(db: Path, clock: FakeClock) -> None:
    a = Node(db, clock)
    stream = a.registry.create("key_a")
    burst = a.push(stream, INDEX_RESERVE + 50, step_ms=1)  # no reap: only the push-time write protects it
    b = Node(db, clock)
    after = b.push(b.registry.get_active(stream.id, "key_a"), 1)
    assert after[0].index > burst[-1].index


def test_stream_time_past_the_clock_reserve_without_a_tick_never_goes_back(db: Path, clock: FakeClock) -> None:
    a = Node(db, clock)
    stream = a.registry.create("key_a")
    handed = a.push(stream, 30, step_ms=1_000)  # 30 s of stream time > CLOCK_RESERVE_MS, no reap
    assert handed[-1].timestamp_ms > CLOCK_RESERVE_MS
    b = Node(db, clock)
    after = b.push(b.registry.get_active(stream.id, "key_a"), 1, session="new-publisher")
    assert after[0].timestamp_ms > handed[-1].timestamp_ms


def test_clean_close_then_restart_also_continues(db: Path, clock: FakeClock) -> None:
    a = Node(db, clock)
    stream = a.registry.create("key_a", source=SourceSpec("file", "clip.mp4"))
    handed = a.push(stream, 5)
    a.registry.close()
    b = Node(db, clock)
    again = b.registry.get_active(stream.id, "key_a")
    assert again.source == SourceSpec("file", "clip.mp4")
    assert b.push(again, 1)[0].index > handed[-1].index


def test_frames_lost_in_the_restart_are_segment_empty_saying_so(db: Path, clock: FakeClock) -> None:
    a = Node(db, clock)
    stream = a.registry.create("key_a")
    old = a.push(stream, 10)
    b = Node(db, clock)
    again = b.registry.get_active(stream.id, "key_a")
    window = b.registry.window(again)
    for query in ("frame_index=-1", "frame_index=0", "frame_index=3", f"timestamp_ms={old[2].timestamp_ms}"):
        with pytest.raises(SegmentEmpty, match="restarted"):
            select_frame(window, frame_ref(stream.id, query))
    with pytest.raises(SegmentEmpty, match="restarted"):
        select_segment(window, parse_segment_uri(f"ovs://streams/{stream.id}?start_offset_ms=-5000"), 100)
    new = b.push(again, 2)
    window = b.registry.window(again)
    assert select_frame(window, frame_ref(stream.id, "frame_index=-1")) == new[-1].index
    for query in ("frame_index=-5", "frame_index=3", f"timestamp_ms={old[2].timestamp_ms}"):
        with pytest.raises(SegmentEmpty, match="restarted"):
            select_frame(window, frame_ref(stream.id, query))
    before_restart = f"ovs://streams/{stream.id}?start_frame_index=2&end_frame_index=6"
    with pytest.raises(SegmentEmpty, match="restarted"):
        select_segment(window, parse_segment_uri(before_restart), 100)
    sample = select_segment(window, parse_segment_uri(f"ovs://streams/{stream.id}?start_offset_ms=-60000"), 100)
    assert sample.indexes and set(sample.indexes) <= {i.index for i in new}  # never a frame from before


def test_lease_that_passed_while_down_ends_expired_and_keepalive_is_written_through(db: Path, clock: FakeClock) -> None:
    a = Node(db, clock)
    short = a.registry.create("key_a")
    kept = a.registry.create("key_a")
    a.push(short, 4)
    clock.advance(200_000)
    a.registry.keepalive(kept.id, "key_a")
    clock.advance(200_000)  # `short` passed its lease while nobody ran the reaper
    b = Node(db, clock)
    gone = b.registry.get(short.id, "key_a")
    assert not gone.active and gone.end_reason == "expired"
    assert b.registry.active_count("key_a") == 1
    assert b.registry.get_active(kept.id, "key_a").expires_at_ms == kept.expires_at_ms


def test_tombstones_come_back_until_their_time_passes(db: Path, clock: FakeClock) -> None:
    a = Node(db, clock, tombstone_ms=60_000)
    stream = a.registry.create("key_a")
    a.push(stream, 6)
    a.registry.end(stream, "deleted")
    frozen = a.registry.facts(stream)
    b = Node(db, clock, tombstone_ms=60_000)
    again = b.registry.get(stream.id, "key_a")
    assert not again.active and b.registry.facts(again) == frozen
    assert frozen.buffer.last_frame_index == 5 and again.end_reason == "deleted"
    assert (frozen.width, frozen.height, frozen.buffer.recent_fps, frozen.publisher_connected) == (64, 48, 0.0, False)
    assert b.registry.ingest_target(stream.id) is None  # an ended stream never becomes active again
    clock.advance(60_001)
    c = Node(db, clock, tombstone_ms=60_000)
    with pytest.raises(StreamNotFound):
        c.registry.get(stream.id, "key_a")
    assert c.store.load() == []


def test_tombstones_are_capped_by_count_oldest_forgotten_first_also_in_the_store(db: Path, clock: FakeClock) -> None:
    a = Node(db, clock, max_tombstones=3)
    streams = [a.registry.create("key_a") for _ in range(5)]
    for stream in streams:
        clock.advance(10)
        a.registry.end(stream, "deleted")
    kept = [s.id for s in a.registry.owned("key_a")]
    assert kept == [s.id for s in reversed(streams[2:])]
    assert {r.id for r in a.store.load()} == set(kept)
    b = Node(db, clock, max_tombstones=2)  # a lower cap applies at restart too
    assert [s.id for s in b.registry.owned("key_a")] == [streams[4].id, streams[3].id]
    assert len(b.store.load()) == 2
    c = Node(db, clock, max_tombstones=0)  # none kept: not even the one that just ended
    fresh = c.registry.create("key_a")
    c.registry.end(fresh, "deleted")
    assert c.registry.owned("key_a") == [] and c.store.load() == []


def test_restored_streams_count_toward_the_per_key_limit(db: Path, clock: FakeClock) -> None:
    from livesight.core.errors import StreamLimitExceeded

    a = Node(db, clock, max_active_per_owner=2)
    a.registry.create("key_a")
    a.registry.create("key_a")
    b = Node(db, clock, max_active_per_owner=2)
    with pytest.raises(StreamLimitExceeded):
        b.registry.create("key_a")
    b.registry.create("key_b")


def test_frames_do_not_write_the_store_per_frame(db: Path, clock: FakeClock) -> None:
    a = Node(db, clock)
    stream = a.registry.create("key_a")
    writes: list[int] = []
    put = a.store.put
    a.store.put = lambda records: (writes.append(len(records)), put(records))[1]  # type: ignore[method-assign]
    for _ in range(40):  # 40 ticks of 10 frames: 400 frames, about 13 s of a 30 fps stream
        a.push(stream, 10)
        a.registry.reap()
    assert 1 <= len(writes) <= 8, writes  # a checkpoint every few seconds, not 400 writes
    assert writes == [1] * len(writes)  # only the stream that changed


class SlowStore(SQLiteStreamStore):
    """A real store whose writes wait for `gate` and record the thread they ran on."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.threads: list[str] = []

    def put(self, records: Sequence[StreamRecord]) -> None:
        self.threads.append(threading.current_thread().name)
        self.gate.wait(10)
        super().put(records)


def test_background_writes_leave_the_caller_and_frames_past_the_durable_mark_wait(db: Path, clock: FakeClock) -> None:
    store = SlowStore(db)
    store.gate.set()
    registry = StreamRegistry(clock, BufferPool(clock), RegistryLimits(), store, background_writes=True)
    stream = registry.create("key_a")
    asyncio.run(registry.saved())
    assert store.threads and all(name.startswith("livesight-store") for name in store.threads)
    assert registry.persistence is not None
    marks = registry.persistence.marks(stream.id)
    assert marks.durable_index_hwm == INDEX_RESERVE
    target = registry.ingest_target(stream.id)
    assert target is not None
    store.gate.clear()  # the writer stalls: a checkpoint is submitted but does not land
    for n in range(INDEX_RESERVE // 2 + 10):
        clock.advance(1)
        target.push_frame(IngestFrame("s", float(n), 64, 48, JpegPayload(b"\xff\xd8x")))
    registry.reap()  # submits the checkpoint and returns at once
    assert marks.index_hwm > INDEX_RESERVE and marks.durable_index_hwm == INDEX_RESERVE
    threading.Timer(0.3, store.gate.set).start()
    for n in range(INDEX_RESERVE // 2 + 10, INDEX_RESERVE + 1):  # the last push reaches the durable mark
        clock.advance(1)
        target.push_frame(IngestFrame("s", float(n), 64, 48, JpegPayload(b"\xff\xd8x")))
    assert marks.durable_index_hwm > INDEX_RESERVE  # it waited for a committed write
    registry.close()
    again = Node(db, clock)
    assert again.push(again.registry.get_active(stream.id, "key_a"), 1)[0].index > INDEX_RESERVE
