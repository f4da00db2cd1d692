from livesight.buffer.pool import BufferLimits, BufferPool
from livesight.core.clock import FakeClock
from livesight.core.frame import IngestFrame, JpegPayload


def frame(ms: float, size: int = 100) -> IngestFrame:
    return IngestFrame(session="s", media_ms=ms, width=8, height=8, payload=JpegPayload(b"j" * size))


def test_retention_by_time() -> None:
    clock = FakeClock(0)
    pool = BufferPool(clock, BufferLimits(retention_ms=1_000))
    for i in range(20):
        pool.append("a", frame(i * 100))
        clock.advance(100)
    ring = pool.get("a")
    assert ring is not None
    # frames arrived at 0..1900; at the last append (t=1900) anything before 900 is gone
    assert ring.window().first_index == 9
    clock.advance(5_000)
    pool.sweep()
    assert ring.retained_count == 0
    assert pool.nbytes == 0


def test_stream_budget_evicts_oldest_of_that_stream_only() -> None:
    clock = FakeClock(0)
    pool = BufferPool(clock, BufferLimits(stream_budget_bytes=350, global_budget_bytes=10_000))
    for i in range(3):
        pool.append("b", frame(i))
    for i in range(10):
        pool.append("a", frame(i))
        clock.advance(1)
    a, b = pool.get("a"), pool.get("b")
    assert a is not None and b is not None
    assert a.retained_count == 3 and a.window().first_index == 7
    assert b.retained_count == 3
    assert pool.nbytes == 600
    assert pool.budget_evictions == 7


def test_global_budget_evicts_globally_oldest_and_never_a_streams_newest_gop() -> None:
    clock = FakeClock(0)
    pool = BufferPool(clock, BufferLimits(global_budget_bytes=500))
    for i in range(3):
        pool.append("old", frame(i))
        clock.advance(10)
    pool.append("new", frame(0, size=450))
    old, new = pool.get("old"), pool.get("new")
    assert old is not None and new is not None
    assert new.retained_count == 1
    assert old.retained_count == 1 and old.window().first_index == 2  # its newest frame (a JPEG is a GOP) stays
    assert pool.nbytes == 550  # over the budget by the streams' open GOPs, never by more
    # a single frame larger than the whole budget is still kept (the newest frame is never evicted)
    pool.append("huge", frame(0, size=900))
    huge = pool.get("huge")
    assert huge is not None and huge.retained_count == 1


def test_drop_frees_everything() -> None:
    pool = BufferPool(FakeClock(0))
    for i in range(5):
        pool.append("a", frame(i))
    pool.drop("a")
    assert pool.nbytes == 0 and pool.get("a") is None
