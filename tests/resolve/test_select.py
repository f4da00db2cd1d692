"""Frame selection (CONTRACT §5.1, §5.2): table-driven cases and property tests on real windows."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livesight.buffer.ring import FrameWindow
from livesight.core.errors import FrameEvicted, FrameNotYetProduced, LivesightError, SegmentEmpty, SegmentInvalid
from livesight.resolve.select import select_frame, select_segment
from livesight.resolve.uri import parse_frame_uri, parse_segment_uri
from tests.resolve.windows import make_window, uniform

SID = "0b7e3c1e-8f5a-4d3b-9a61-2f0c8d7e6a51"
URL = f"ovs://streams/{SID}?"

# 100 frames at 10 fps (t = 0, 100, ..., 9900 ms), the first 20 evicted: retained 20..99 (t 2000..9900)
W = make_window([i * 100 for i in range(100)], evicted=20)


def frame(query: str, window: FrameWindow | None = W) -> int:
    return select_frame(window, parse_frame_uri(URL + query))


def segment(query: str, window: FrameWindow | None = W, limit: int = 256) -> list[int]:
    return list(select_segment(window, parse_segment_uri(URL + query), limit).indexes)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("frame_index=-1", 99),
        ("frame_index=-80", 20),
        ("frame_index=0", 20),
        ("frame_index=20", 20),
        ("frame_index=57", 57),
        ("frame_index=99", 99),
        ("timestamp_ms=5000", 50),
        ("timestamp_ms=5049", 50),
        ("timestamp_ms=5050", 50),  # a tie goes to the earlier frame
        ("timestamp_ms=5051", 51),
        ("timestamp_ms=5040&direction=forward", 51),
        ("timestamp_ms=5090&direction=backward", 50),
        ("timestamp_ms=9990", 99),
        ("timestamp_ms=1950", 20),
        ("offset_ms=-1000", 89),
        ("offset_ms=-1", 99),
        ("offset_ms=0", 20),
        ("offset_ms=350", 23),  # 2350 -> tie between 23 (2300) and 24 (2400)
        ("offset_ms=360&direction=backward", 23),
        ("frame_index=5&tolerance_ms=1&direction=forward", None),  # evicted; time params ignored
    ],
)
def test_image_anchor(query: str, expected: int | None) -> None:
    if expected is None:
        with pytest.raises(FrameEvicted):
            frame(query)
    else:
        assert frame(query) == expected


@pytest.mark.parametrize(
    ("query", "error", "status", "words"),
    [
        ("frame_index=5", FrameEvicted, 410, ["frame_index=5", "evicted", "20"]),
        ("frame_index=-81", FrameEvicted, 410, ["frame_index=-81", "evicted"]),
        ("frame_index=-101", SegmentEmpty, 404, ["frame_index=-101", "100 frames"]),
        ("frame_index=100", FrameNotYetProduced, 409, ["frame_index=100", "99"]),
        ("frame_index=100000", FrameNotYetProduced, 409, ["frame_index=100000"]),
        ("timestamp_ms=1000", SegmentEmpty, 404, ["timestamp_ms=1000", "evicted"]),
        ("timestamp_ms=20000", SegmentEmpty, 404, ["timestamp_ms=20000", "not produced yet"]),
        ("timestamp_ms=5020&tolerance_ms=10", SegmentEmpty, 404, ["tolerance_ms=10", "gap"]),
        ("timestamp_ms=5010&direction=forward&tolerance_ms=50", SegmentEmpty, 404, ["forward"]),
        ("offset_ms=-9000", SegmentEmpty, 404, ["offset_ms=-9000", "evicted"]),
        ("offset_ms=10000", SegmentEmpty, 404, ["offset_ms=10000"]),
    ],
)
def test_image_errors(query: str, error: type[LivesightError], status: int, words: list[str]) -> None:
    with pytest.raises(error) as err:
        frame(query)
    assert err.value.status == status
    assert URL + query in err.value.message
    for word in words:
        assert word in err.value.message


def test_no_frame_yet() -> None:
    for query in ("frame_index=-1", "frame_index=0", "frame_index=3", "timestamp_ms=0"):
        with pytest.raises(SegmentEmpty, match="no frame has arrived"):
            frame(query, None)
    with pytest.raises(SegmentEmpty, match="no frame has arrived"):
        segment("start_offset_ms=-5000", None)


def test_every_frame_aged_out() -> None:
    window = make_window([0, 100, 200], evicted=3)
    with pytest.raises(FrameEvicted):
        frame("frame_index=2", window)
    with pytest.raises(FrameNotYetProduced):
        frame("frame_index=3", window)
    with pytest.raises(SegmentEmpty, match="evicted"):
        frame("frame_index=-1", window)
    with pytest.raises(SegmentEmpty, match="evicted"):
        segment("start_offset_ms=-1000", window)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("start_offset_ms=-5000", [49, 59, 69, 79, 89, 99]),  # t 4900..9900 at 1 fps: both ends are grid points
        ("start_offset_ms=-1000&max_fps=5", [89, 91, 93, 95, 97, 99]),
        ("start_frame_index=30&end_frame_index=35&max_fps=100", [30, 31, 32, 33, 34]),
        ("start_frame_index=30&end_frame_index=35&max_fps=1", [30]),
        ("start_frame_index=0&end_frame_index=25&max_fps=10", [20, 21, 22, 23, 24]),
        ("start_frame_index=5&end_frame_index=25&max_fps=10", [20, 21, 22, 23, 24]),  # retention intersection
        ("start_frame_index=-3", [97]),
        ("start_frame_index=-3&max_fps=10", [97, 98, 99]),
        ("start_timestamp_ms=3000&end_timestamp_ms=3500&max_fps=10", [30, 31, 32, 33, 34]),
        ("start_timestamp_ms=3001&end_timestamp_ms=3501&max_fps=10", [31, 32, 33, 34, 35]),
        ("start_timestamp_ms=0&end_timestamp_ms=2300&max_fps=10", [20, 21, 22]),
        ("start_offset_ms=0&end_offset_ms=300&max_fps=10", [20, 21, 22]),
        ("start_frame_index=40&end_timestamp_ms=4300&max_fps=10", [40, 41, 42]),  # mixed kinds
        ("start_timestamp_ms=4000&end_frame_index=43&max_fps=10", [40, 41, 42]),
        ("start_offset_ms=-200&end_frame_index=-1&max_fps=10", [97, 98]),  # exclusive end
        ("start_frame_index=-1", [99]),
        ("start_timestamp_ms=9900", [99]),
        ("start_frame_index=90&end_frame_index=1000&max_fps=10", list(range(90, 100))),
        ("start_frame_index=10&end_timestamp_ms=2100&max_fps=1000", [20]),
        ("start_offset_ms=-1000&max_fps=2.5", [89, 93, 97]),
    ],
)
def test_segments(query: str, expected: list[int]) -> None:
    assert segment(query) == expected


@pytest.mark.parametrize(
    ("query", "error", "words"),
    [
        ("start_offset_ms=-1000&end_offset_ms=0", SegmentInvalid, ["end_offset_ms=0", "oldest retained", "omit"]),
        ("start_offset_ms=-1000&end_offset_ms=-2000", SegmentInvalid, ["end_offset_ms=-2000", "start_offset_ms"]),
        ("start_frame_index=50&end_frame_index=50", SegmentInvalid, ["end_frame_index=50"]),
        ("start_frame_index=50&end_frame_index=0", SegmentInvalid, ["end_frame_index=0", "oldest retained"]),
        ("start_frame_index=150", SegmentInvalid, ["live edge", "omitting the end means now"]),
        ("start_timestamp_ms=20000", SegmentInvalid, ["omitting the end means now"]),
        ("start_timestamp_ms=5000&end_frame_index=30", SegmentInvalid, ["end_frame_index=30"]),
        ("start_frame_index=1&end_frame_index=10", SegmentEmpty, ["20..99"]),
        ("start_timestamp_ms=0&end_timestamp_ms=1000", SegmentEmpty, ["2000..9900"]),
        ("start_frame_index=120&end_frame_index=130", SegmentEmpty, ["20..99"]),
        ("start_offset_ms=-20000&end_offset_ms=0", SegmentEmpty, ["end_offset_ms=0", "omit the end"]),
        ("start_frame_index=20&max_fps=1000", SegmentInvalid, ["80 frames", "limit of 50"]),
    ],
)
def test_segment_errors(query: str, error: type[LivesightError], words: list[str]) -> None:
    with pytest.raises(error) as err:
        segment(query, limit=50)
    assert URL + query in err.value.message
    for word in words:
        assert word in err.value.message, err.value.message


def test_sixty_seconds_at_two_fps_from_thirty_fps() -> None:
    window = make_window(uniform(30 * 70))
    picked = segment("start_offset_ms=-60000&max_fps=2", window)
    assert len(picked) == 121
    times = [window.info(i).timestamp_ms for i in picked]
    assert all(abs(t - times[0] - k * 500) <= 17 for k, t in enumerate(times))


# --- properties -------------------------------------------------------------------------------------

_gaps = st.lists(st.integers(1, 400), min_size=0, max_size=120)


@st.composite
def windows(draw: st.DrawFn) -> FrameWindow:
    gaps = draw(_gaps)
    times = [0]
    for gap in gaps:
        times.append(times[-1] + gap)
    evicted = draw(st.integers(0, len(times)))
    return make_window(times, evicted)


_index = st.integers(-300, 300)
_ms = st.integers(-20_000, 60_000)
_anchor = st.one_of(
    _index.map(lambda v: f"frame_index={v}"),
    _ms.map(lambda v: f"timestamp_ms={abs(v)}"),
    _ms.map(lambda v: f"offset_ms={v}"),
)


@settings(max_examples=300, deadline=None)
@given(
    window=windows(),
    anchor=_anchor,
    tolerance=st.integers(1, 1000),
    direction=st.sampled_from(["nearest", "backward", "forward"]),
)
def test_frame_is_retained_or_a_typed_error(window: FrameWindow, anchor: str, tolerance: int, direction: str) -> None:
    try:
        index = frame(f"{anchor}&tolerance_ms={tolerance}&direction={direction}", window)
    except (FrameEvicted, FrameNotYetProduced, SegmentEmpty):
        return
    assert window.first_index is not None
    assert window.last_index is not None
    assert window.first_index <= index <= window.last_index


def _seg_anchor(prefix: str) -> st.SearchStrategy[str]:
    return st.one_of(
        _index.map(lambda v: f"{prefix}_frame_index={v}"),
        _ms.map(lambda v: f"{prefix}_timestamp_ms={abs(v)}"),
        _ms.map(lambda v: f"{prefix}_offset_ms={v}"),
    )


@settings(max_examples=400, deadline=None)
@given(
    window=windows(),
    start=_seg_anchor("start"),
    end=st.none() | _seg_anchor("end"),
    fps=st.sampled_from(["0.1", "0.5", "1", "2", "3.3", "7", "30", "1000"]),
    limit=st.integers(1, 300),
)
def test_segment_properties(window: FrameWindow, start: str, end: str | None, fps: str, limit: int) -> None:
    query = f"{start}&max_fps={fps}" + (f"&{end}" if end else "")
    try:
        sample = select_segment(window, parse_segment_uri(URL + query), limit)
    except (SegmentEmpty, SegmentInvalid):
        return
    picked = list(sample.indexes)
    assert window.first_index is not None
    assert window.last_index is not None
    assert window.first_index <= sample.lo < sample.hi <= window.last_index + 1, "inside the retained range"
    assert picked, "a selected segment is never empty"
    assert picked[0] == sample.lo, "the grid starts at the first frame in range"
    assert all(sample.lo <= i < sample.hi for i in picked)
    assert all(a < b for a, b in itertools.pairwise(picked)), "strictly increasing"
    assert len(picked) <= limit
    span_ms = window.info(sample.hi - 1).timestamp_ms - window.info(sample.lo).timestamp_ms
    assert len(picked) <= math.floor(span_ms * float(fps) / 1000 + 1e-9) + 1, "at most max_fps per second"


@settings(max_examples=200, deadline=None)
@given(window=windows(), fps=st.sampled_from([0.3, 1.0, 2.0, 6.0, 25.0, 500.0]))
def test_sampling_matches_the_naive_grid(window: FrameWindow, fps: float) -> None:
    """The jumping sampler picks exactly what evaluating every grid point would."""
    if window.first_index is None or window.last_index is None:
        return
    picked = segment(f"start_frame_index=0&max_fps={fps}", window, 10**6)
    infos = window.infos()
    t0, t_end = infos[0].timestamp_ms, infos[-1].timestamp_ms
    step = 1000 / fps
    naive: list[int] = []
    for k in range(math.floor((t_end - t0) / step) + 1):
        g = t0 + k * step
        best = min(infos, key=lambda f: (abs(f.timestamp_ms - g), f.index)).index
        if not naive or naive[-1] != best:
            naive.append(best)
    assert picked == naive
