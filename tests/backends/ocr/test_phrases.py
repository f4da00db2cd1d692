from __future__ import annotations

import pytest

from livesight.backends.ocr import phrases as ph


@pytest.mark.parametrize(
    ("x", "y", "where"),
    [(0.1, 0.1, "at the top left"), (0.5, 0.1, "at the top"), (0.9, 0.1, "at the top right"),
     (0.1, 0.5, "on the left"), (0.5, 0.5, "in the centre"), (0.9, 0.5, "on the right"),
     (0.1, 0.9, "at the bottom left"), (0.5, 0.9, "at the bottom"), (0.9, 0.9, "at the bottom right"),
     (0.0, 0.0, "at the top left"), (1.0, 1.0, "at the bottom right"), (-1.0, 2.0, "at the bottom left")],
)  # fmt: skip
def test_where(x: float, y: float, where: str) -> None:
    assert ph.where(x, y) == where


@pytest.mark.parametrize(
    ("x", "y", "region"),
    [(0.1, 0.1, "the top left"), (0.5, 0.1, "the top"), (0.1, 0.5, "the left"), (0.5, 0.5, "the centre")],
)
def test_region(x: float, y: float, region: str) -> None:
    assert ph.region(x, y) == region


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0, "0.0 s"), (4_000, "4.0 s"), (59_949, "59.9 s"), (60_000, "1:00.0"), (62_500, "1:02.5"),
     (3_723_400, "1:02:03.4"), (-5_000, "-5.0 s")],
)  # fmt: skip
def test_stream_time(ms: int, text: str) -> None:
    assert ph.stream_time(ms) == text


def test_wall_time() -> None:
    assert ph.wall_time(1_764_024_607_000) == "2025-11-24 22:50:07 UTC"
    assert "epoch" in ph.wall_time(10**20)


@pytest.mark.parametrize(
    ("items", "text"),
    [([], ""), (["a"], "a"), (["a", "b"], "a and b"), (["a", "b", "c"], "a, b and c")],
)
def test_join(items: list[str], text: str) -> None:
    assert ph.join(items) == text


@pytest.mark.parametrize(
    ("text", "time_like", "seconds"),
    [("12:34:56", True, 45296), ("CAM 03 2025-11-24 21:50:07", True, 78607), ("9:05", True, None),
     ("09.05.33", True, 32733), ("12:00:05 PM", True, 43205), ("12:00:05 am", True, 5), ("3:15:00 pm", True, 54900),
     ("LOADING DOCK B", False, None), ("KX 4821", False, None), ("2025-11-24", False, None),
     ("12.50", False, None), ("25:61:00", False, None), ("112:30:45", False, None)],
)  # fmt: skip
def test_time_like_text_and_clock_seconds(text: str, time_like: bool, seconds: int | None) -> None:
    assert ph.is_time_like(text) is time_like
    assert ph.clock_seconds(text) == seconds
