from __future__ import annotations

import pytest

from livesight.backends.ocr.reader import TextLine
from livesight.backends.ocr.tracks import follow, iou


def line(text: str, x: int, y: int, w: int = 100, h: int = 20, score: float = 0.99) -> TextLine:
    return TextLine(text=text, score=score, box=(x, y, x + w, y + h))


W, H = 1000, 500


def frames(*per_frame: list[TextLine]) -> list[tuple[int, int, int, list[TextLine]]]:
    return [(i, W, H, lines) for i, lines in enumerate(per_frame)]


@pytest.mark.parametrize(
    ("a", "b", "value"),
    [((0, 0, 1, 1), (0, 0, 1, 1), 1.0), ((0, 0, 1, 1), (2, 2, 3, 3), 0.0), ((0, 0, 2, 1), (1, 0, 3, 1), 1 / 3),
     ((0, 0, 0, 0), (0, 0, 0, 0), 0.0)],
)  # fmt: skip
def test_iou(a: tuple[float, ...], b: tuple[float, ...], value: float) -> None:
    assert iou(a, b) == pytest.approx(value)  # type: ignore[arg-type]


def test_a_static_sign_and_a_ticking_clock_are_two_tracks() -> None:
    tracks = follow(
        frames(
            [line("SIGN", 400, 200), line("12:00:00", 800, 450)],
            [line("SIGN", 401, 200), line("12:00:01", 800, 450)],
            [line("SIGN", 400, 201), line("12:00:02", 800, 450)],
        )
    )
    assert [t.readings for t in tracks] == [["SIGN"], ["12:00:00", "12:00:01", "12:00:02"]]
    assert [t.changed for t in tracks] == [False, True]
    assert [len(t.sightings) for t in tracks] == [3, 3]


def test_same_text_follows_a_moving_box() -> None:
    tracks = follow(frames([line("BUS 42", 0, 100)], [line("BUS 42", 300, 100)], [line("BUS 42", 600, 100)]))
    assert len(tracks) == 1
    assert tracks[0].first.centre[0] < tracks[0].last.centre[0]


def test_new_text_elsewhere_is_a_new_track() -> None:
    tracks = follow(frames([line("A", 0, 0)], [line("B", 800, 400)], [line("A", 0, 0)]))
    assert [t.readings for t in tracks] == [["A"], ["B"]]
    assert [s.position for s in tracks[0].sightings] == [0, 2]


def test_two_identical_texts_keep_their_own_tracks() -> None:
    tracks = follow(frames([line("EXIT", 0, 0), line("EXIT", 800, 0)], [line("EXIT", 805, 0), line("EXIT", 5, 0)]))
    assert len(tracks) == 2
    for track in tracks:
        assert abs(track.first.centre[0] - track.last.centre[0]) < 0.01


def test_boxes_are_compared_relative_to_frame_size() -> None:
    tracks = follow([(0, 1000, 500, [line("12:00:00", 800, 450)]), (1, 500, 250, [line("12:00:01", 400, 225, 50, 10)])])
    assert len(tracks) == 1
    assert tracks[0].readings == ["12:00:00", "12:00:01"]


def test_no_frames_no_tracks() -> None:
    assert follow([]) == []
    assert follow(frames([], [])) == []
