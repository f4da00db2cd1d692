"""The rapidocr adapter against the real engine: offline load, clear errors, reading, score filter."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from livesight.backends.ocr import OcrModel
from livesight.backends.ocr.reader import WEIGHTS, TextReader, default_model_dir, to_lines
from livesight.core.errors import ModelFailed, ModelUnavailable
from tests.backends.ocr.pictures import BLACK, RED, WHITE, Scene, Text, clock_scene, draw, sign


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Any attempt to open a connection or download fails the test (and is recorded)."""
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    import rapidocr.utils.download_file as download_file

    def no_download(*args: object, **kwargs: object) -> None:
        attempts.append(("download", args))
        raise AssertionError("rapidocr tried to download a file")

    monkeypatch.setattr(download_file.DownloadFile, "run", staticmethod(no_download))
    yield attempts
    assert attempts == []


def rgb(scene: Scene) -> np.ndarray:
    return np.asarray(draw(scene), dtype=np.uint8)


def test_weights_ship_in_the_wheel() -> None:
    for name in WEIGHTS.values():
        assert (default_model_dir() / name).stat().st_size > 100_000


def test_loads_offline_from_the_wheel(no_network: list[object]) -> None:
    reader = TextReader(threads=1)
    reader.load()
    reader.load()  # idempotent
    assert reader.loaded
    assert [line.text for line in reader.read(rgb(sign("WAREHOUSE")))] == ["WAREHOUSE"]


def test_missing_weights_are_a_clear_error(tmp_path: Path) -> None:
    shutil.copy(default_model_dir() / WEIGHTS["Det"], tmp_path / WEIGHTS["Det"])
    with pytest.raises(ModelUnavailable) as caught:
        TextReader(model_dir=tmp_path).load()
    message = caught.value.message
    assert WEIGHTS["Rec"] in message
    assert WEIGHTS["Cls"] in message
    assert "nothing is downloaded" in message
    assert "pip install --force-reinstall rapidocr==3.10.0" in message
    with pytest.raises(ModelUnavailable):  # the model surfaces the same error from load and answer
        OcrModel(model_dir=tmp_path).answer("what does it say?", [])


def test_corrupt_weights_are_a_clear_error(tmp_path: Path) -> None:
    for name in WEIGHTS.values():
        (tmp_path / name).write_bytes(b"not an onnx model")
    with pytest.raises(ModelUnavailable, match=r"could not run rapidocr \(are its weights in .* corrupt\?\)"):
        TextReader(model_dir=tmp_path).load()


def test_reads_lines_with_boxes_in_reading_order(reader: TextReader) -> None:
    lines = reader.read(rgb(clock_scene(7)))
    assert [line.text for line in lines] == ["LOADING DOCK B", "12:00:07"]
    sign_line, clock_line = lines
    assert sign_line.height > clock_line.height
    assert clock_line.centre(1280, 720)[0] > 0.75
    assert clock_line.centre(1280, 720)[1] > 0.85
    assert all(line.score >= 0.9 for line in lines)


def test_a_reader_that_reads_nothing_fails_its_self_test() -> None:
    with pytest.raises(ModelUnavailable, match="self-test read '' instead of 'LIVESIGHT 42'"):
        TextReader(min_score=1.01).load()  # nothing scores above 1


QUAD = [[10, 20], [110, 20], [110, 50], [10, 50]]


@pytest.mark.parametrize(
    ("raw", "texts"),
    [
        ([("GATE 7", 0.95, QUAD)], ["GATE 7"]),
        ([("GATE 7", 0.89, QUAD)], []),  # below min_score 0.9
        ([("GATE 7", 0.9, QUAD)], ["GATE 7"]),  # at min_score
        ([("GATE 7", float("nan"), QUAD)], []),
        ([("●", 0.99, QUAD)], []),  # no letter or digit: rapidocr's typical false positive
        ([("  A   B\t", 0.99, QUAD)], ["A B"]),  # whitespace collapsed
        ([("", 0.99, QUAD)], []),
        ([("ß 3", 0.99, QUAD)], ["ß 3"]),
        ([("O", 0.95, QUAD)], []),  # a single glyph needs 0.97: discs read as "O"
        ([("7", 0.98, QUAD)], ["7"]),
    ],
)
def test_to_lines_filters(raw: list[tuple[str, float, list[list[int]]]], texts: list[str]) -> None:
    assert [line.text for line in to_lines(raw, 640, 480, 0.9)] == texts


def test_to_lines_clamps_boxes_and_sorts_in_reading_order() -> None:
    raw = [
        ("BOTTOM", 0.99, [[-5, 400], [700, 400], [700, 500], [-5, 500]]),
        ("RIGHT", 0.99, [[300, 10], [400, 10], [400, 30], [300, 30]]),
        ("LEFT", 0.99, [[10, 10], [100, 10], [100, 30], [10, 30]]),
    ]
    lines = to_lines(raw, 640, 480, 0.9)
    assert [line.text for line in lines] == ["LEFT", "RIGHT", "BOTTOM"]
    assert lines[2].box == (0, 400, 640, 480)


@pytest.mark.parametrize("colour", [WHITE, BLACK, RED])
@pytest.mark.parametrize("radius", [20, 40, 80])
def test_shapes_are_not_text(reader: TextReader, colour: tuple[int, int, int], radius: int) -> None:
    assert reader.read(rgb(Scene(width=640, height=480, discs=((320, 240, radius, colour),)))) == ()


def test_text_free_frames_read_nothing(reader: TextReader) -> None:
    assert reader.read(np.zeros((480, 640, 3), dtype=np.uint8)) == ()


def test_punctuation_only_detections_are_dropped(reader: TextReader) -> None:
    scene = Scene(width=640, height=480, background=WHITE, texts=(Text("• • •", 200, 200, 60, BLACK),))
    assert reader.read(rgb(scene)) == ()


def test_engine_failures_become_model_failed(reader: TextReader) -> None:
    with pytest.raises(ModelFailed, match="the OCR engine failed on this frame"):
        reader.read(np.zeros((1, 3000, 3), dtype=np.uint8))
