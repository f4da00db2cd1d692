from hypothesis import given
from hypothesis import strategies as st

from livesight.buffer.stream_clock import StreamClock


def test_first_frame_is_zero_and_media_time_is_followed() -> None:
    clock = StreamClock()
    assert clock.stamp("s1", 90_000.0, 1_000) == 0
    assert clock.stamp("s1", 90_033.3, 1_033) == 33
    assert clock.stamp("s1", 90_066.7, 1_070) == 67
    assert clock.last_ms == 67


def test_reconnect_anchors_at_wall_time_gap_and_never_goes_back() -> None:
    clock = StreamClock()
    clock.stamp("a", 5_000.0, 10_000)
    clock.stamp("a", 6_000.0, 11_000)  # stream time 1000
    # publisher rejoins 2.5 s later; its media clock restarted near zero
    assert clock.stamp("b", 12.0, 13_500) == 3_500
    assert clock.stamp("b", 112.0, 13_600) == 3_600


def test_media_jump_far_from_wall_clock_reanchors() -> None:
    clock = StreamClock(max_skew_ms=5_000)
    clock.stamp("a", 0.0, 0)
    clock.stamp("a", 100.0, 100)
    # RTP timestamp wrapped / jumped by hours while 100 ms of wall time passed
    assert clock.stamp("a", 47_000_000.0, 200) == 200
    assert clock.stamp("a", 47_000_100.0, 300) == 300


def test_duplicate_media_timestamps_stay_strictly_increasing() -> None:
    clock = StreamClock()
    stamps = [clock.stamp("a", 1000.0, 5) for _ in range(3)]
    assert stamps == [0, 1, 2]


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.floats(-1e9, 1e9, allow_nan=False), st.integers(0, 10_000)),
        min_size=1,
        max_size=200,
    )
)
def test_stream_time_is_strictly_increasing_whatever_the_input(frames: list[tuple[str, float, int]]) -> None:
    clock = StreamClock()
    wall = 0
    last = -1
    for session, media, gap in frames:
        wall += gap
        ts = clock.stamp(session, media, wall)
        assert ts > last
        last = ts
