from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from livesight.backends.ocr import stats

COLOURS = [
    ((0, 0, 0), "black"),
    ((20, 25, 30), "black"),
    ((128, 128, 128), "grey"),
    ((200, 200, 200), "grey"),
    ((250, 250, 250), "white"),
    ((255, 255, 255), "white"),
    ((255, 0, 0), "red"),
    ((128, 0, 0), "red"),
    ((230, 40, 40), "red"),
    ((255, 192, 203), "pink"),
    ((255, 105, 180), "pink"),
    ((255, 0, 255), "magenta"),
    ((255, 165, 0), "orange"),
    ((139, 69, 19), "brown"),
    ((255, 255, 0), "yellow"),
    ((128, 128, 0), "olive"),
    ((0, 128, 0), "green"),
    ((0, 255, 0), "green"),
    ((0, 255, 255), "cyan"),
    ((0, 128, 128), "cyan"),
    ((0, 0, 255), "blue"),
    ((40, 90, 160), "blue"),
    ((128, 0, 128), "magenta"),
    ((128, 0, 255), "purple"),
    ((75, 0, 130), "purple"),
]


@pytest.mark.parametrize(("rgb", "name"), COLOURS)
def test_colour_name(rgb: tuple[int, int, int], name: str) -> None:
    assert stats.colour_name(*rgb) == name


@given(st.lists(st.tuples(*[st.integers(0, 255)] * 3), min_size=1, max_size=50))
def test_name_pixels_agrees_with_colour_name(pixels: list[tuple[int, int, int]]) -> None:
    array = np.array(pixels, dtype=np.uint8).reshape(1, -1, 3)
    names = [stats.PALETTE[i] for i in stats.name_pixels(array).ravel()]
    assert names == [stats.colour_name(*p) for p in pixels]


@pytest.mark.parametrize(
    ("luma", "word"),
    [(0, "very dark"), (29.9, "very dark"), (30, "dark"), (79, "dark"), (80, "moderately bright"),
     (169, "moderately bright"), (170, "bright"), (219, "bright"), (220, "very bright"), (255, "very bright")],
)  # fmt: skip
def test_brightness_word(luma: float, word: str) -> None:
    assert stats.brightness_word(luma) == word


@pytest.mark.parametrize(
    ("percent", "word"),
    [(0.0, "almost nothing"), (0.49, "almost nothing"), (0.5, "a little"), (1.99, "a little"),
     (2.0, "a moderate amount"), (7.9, "a moderate amount"), (8.0, "a lot"), (100.0, "a lot")],
)  # fmt: skip
def test_change_word(percent: float, word: str) -> None:
    assert stats.change_word(percent) == word


def solid(rgb: tuple[int, int, int], h: int = 10, w: int = 20) -> np.ndarray:
    return np.full((h, w, 3), rgb, dtype=np.uint8)


def test_dominant_colours_shares_sorted_and_thresholded() -> None:
    image = solid((0, 0, 255), 10, 100)
    image[:, :30] = (255, 0, 0)  # 30 % red
    image[:, 30:35] = (0, 255, 0)  # 5 % green: under the 8 % threshold
    assert stats.dominant_colours(image) == (("blue", pytest.approx(0.65)), ("red", pytest.approx(0.30)))


def test_dominant_colours_at_most_three_ties_by_palette_order() -> None:
    image = solid((0, 0, 0), 1, 40)
    for i, rgb in enumerate([(255, 255, 255), (255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        image[:, i * 10 : (i + 1) * 10] = rgb
    names = [name for name, _ in stats.dominant_colours(image)]
    assert names == ["white", "red", "green"]


@pytest.mark.parametrize(
    ("rgb", "brightness", "blank"),
    [((0, 0, 0), 0.0, True), ((255, 255, 255), 255.0, True), ((40, 90, 160), 83.03, True)],
)
def test_frame_stats_of_flat_frames(rgb: tuple[int, int, int], brightness: float, blank: bool) -> None:
    s = stats.frame_stats(solid(rgb), (1280, 720))
    assert (s.width, s.height) == (1280, 720)
    assert s.brightness == pytest.approx(brightness, abs=0.01)
    assert s.blank is blank


def test_frame_stats_of_a_busy_frame_is_not_blank() -> None:
    image = solid((0, 0, 0))
    image[:, ::2] = (255, 255, 255)
    s = stats.frame_stats(image, (20, 10))
    assert not s.blank
    assert s.brightness == pytest.approx(127.5, abs=0.1)


@pytest.mark.parametrize(
    ("a", "b", "percent"),
    [((0, 0, 0), (0, 0, 0), 0.0), ((0, 0, 0), (255, 255, 255), 100.0), ((230, 40, 40), (40, 90, 160), 47.06),
     ((100, 100, 100), (110, 100, 100), 1.31)],
)  # fmt: skip
def test_change_percent_of_flat_frames(a: tuple[int, int, int], b: tuple[int, int, int], percent: float) -> None:
    assert stats.change_percent(solid(a), solid(b)) == pytest.approx(percent, abs=0.01)


def test_change_percent_resizes_a_frame_of_another_size() -> None:
    assert stats.change_percent(solid((0, 0, 0), 9, 16), solid((255, 255, 255), 18, 32)) == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("row", "col", "centre"),
    [(0, 0, (1 / 6, 1 / 6)), (1, 1, (0.5, 0.5)), (2, 2, (5 / 6, 5 / 6)), (0, 2, (5 / 6, 1 / 6))],
)
def test_change_centre_finds_the_changed_cell(row: int, col: int, centre: tuple[float, float]) -> None:
    a = solid((0, 0, 0), 30, 30)
    b = a.copy()
    b[row * 10 : row * 10 + 10, col * 10 : col * 10 + 10] = 255
    assert stats.change_centre(a, b) == pytest.approx(centre)
