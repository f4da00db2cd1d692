from hypothesis import given
from hypothesis import strategies as st

from livesight.buffer.ring import FrameRing
from livesight.core.frame import IngestFrame, JpegPayload


def frame(media_ms: float, size: int = 10, session: str = "s") -> IngestFrame:
    return IngestFrame(session=session, media_ms=media_ms, width=64, height=48, payload=JpegPayload(b"x" * size))


def filled(n: int, step_ms: int = 100) -> FrameRing:
    ring = FrameRing()
    for i in range(n):
        ring.append(frame(i * step_ms), arrived_at_ms=1_000 + i * step_ms)
    return ring


def test_indexes_are_lifetime_and_contiguous() -> None:
    ring = filled(5)
    win = ring.window()
    assert (win.first_index, win.last_index, win.count, win.next_index) == (0, 4, 5, 5)
    assert [i.index for i in win.infos()] == [0, 1, 2, 3, 4]
    assert [i.timestamp_ms for i in win.infos()] == [0, 100, 200, 300, 400]


def test_eviction_keeps_indexes_and_reports_counts() -> None:
    ring = filled(5)
    assert ring.evict_oldest() == 10
    assert ring.evict_arrived_before(1_250) == 20  # frames 1 and 2 (arrived 1100, 1200)
    win = ring.window()
    assert (win.first_index, win.last_index) == (3, 4)
    assert ring.evicted_count == 3
    assert ring.nbytes == 20
    assert 2 not in win and 3 in win


def test_window_is_a_snapshot() -> None:
    ring = filled(3)
    win = ring.window()
    ring.append(frame(300), arrived_at_ms=1_300)
    assert win.last_index == 2 and ring.window().last_index == 3
    ring.evict_oldest()
    # the snapshot still lists frame 0 but its payload was released
    assert win.first_index == 0
    assert win.payload(0) is None
    assert win.payload(1) is not None


def test_snapshot_survives_compaction() -> None:
    ring = filled(3000, step_ms=1)
    win = ring.window()
    for _ in range(2500):
        ring.evict_oldest()
    assert ring.window().first_index == 2500
    assert win.info(2999).index == 2999
    assert win.payload(2999) is not None
    assert ring.window().info(2999).index == 2999


def test_time_lookups() -> None:
    ring = filled(5)  # timestamps 0,100,...,400
    win = ring.window()
    assert win.index_at_or_after(150) == 2
    assert win.index_at_or_before(150) == 1
    assert win.index_at_or_after(400) == 4
    assert win.index_at_or_after(401) is None
    assert win.index_at_or_before(-1) is None


def test_recent_fps() -> None:
    ring = filled(50, step_ms=100)  # 10 fps for 5 s, last arrival 5900
    assert ring.recent_fps(5_900) == 10.0
    assert ring.recent_fps(60_000) == 0.0  # stalled


@given(st.lists(st.sampled_from(["append", "evict"]), max_size=300))
def test_retained_range_is_always_contiguous(ops: list[str]) -> None:
    ring = FrameRing()
    produced = 0
    for n, op in enumerate(ops):
        if op == "append":
            ring.append(frame(n * 10.0), arrived_at_ms=n)
            produced += 1
        else:
            ring.evict_oldest()
        win = ring.window()
        assert win.next_index == produced
        if win.count:
            assert win.last_index == produced - 1
            assert win.first_index == produced - win.count
            assert [i.index for i in win.infos()] == list(range(win.first_index, produced))
        assert ring.nbytes == 10 * win.count
