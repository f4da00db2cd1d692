"""OcrModel end to end on generated frames with the real rapidocr: answers depend on the pixels."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from livesight.backends.ocr import OcrModel
from livesight.backends.ocr.model import spread
from livesight.backends.ocr.reader import TextReader
from livesight.core.media import MediaFrame
from tests.backends.ocr.pictures import (
    BLACK,
    RED,
    Scene,
    Text,
    clock_scene,
    clock_segment,
    draw,
    frame,
    image_item,
    jpeg,
    png,
    raw_frame,
    segment_item,
    sign,
)


def test_reads_the_sign_and_says_where(ocr: OcrModel) -> None:
    answer = ocr.answer("What does the sign say?", [image_item(frame(sign(), index=7, timestamp_ms=2500))])
    assert answer.startswith('I read one line of text: "LOADING DOCK B" in the centre.')
    assert "The image (frame_index 7, stream time 2.5 s) is 1280×720" in answer
    assert "blue" in answer


def test_different_text_gives_a_different_answer(ocr: OcrModel) -> None:
    a = ocr.answer("What does the sign say?", [image_item(frame(sign("LOADING DOCK B")))])
    b = ocr.answer("What does the sign say?", [image_item(frame(sign("GATE SEVEN")))])
    assert '"LOADING DOCK B"' in a
    assert '"GATE SEVEN"' in b
    assert "GATE SEVEN" not in a


def test_black_frame_has_no_text(ocr: OcrModel) -> None:
    answer = ocr.answer("What does the sign say?", [image_item(frame(Scene(background=BLACK)))])
    assert answer.startswith("I found no text: the image is blank (a single flat black colour).")
    assert '"' not in answer  # quotes nothing


def test_a_640x480_frame(ocr: OcrModel) -> None:
    answer = ocr.answer("what time is it", [image_item(frame(clock_scene(42, width=640, height=480)))])
    assert answer.startswith('Time-like text in the image: "12:00:42" at the bottom right.')
    assert '"LOADING DOCK B"' in answer
    assert "640×480" in answer


def test_time_question_reports_the_clock_and_arrival(ocr: OcrModel) -> None:
    answer = ocr.answer("What time is it?", [image_item(frame(clock_scene(5), index=450, timestamp_ms=15_000))])
    assert '"12:00:05" at the bottom right' in answer
    assert "reached the server at 2025-11-24 22:50:15 UTC" in answer


def test_colour_question_leads_with_colours(ocr: OcrModel) -> None:
    scene = Scene(background=RED, texts=(Text("STOP", 500, 300, 80),))
    answer = ocr.answer("What colour is it?", [image_item(frame(scene))])
    assert answer.startswith("The dominant colour")
    assert "red" in answer.split(".")[0]
    assert '"STOP"' in answer


def test_scene_questions_get_an_honest_refusal_then_facts(ocr: OcrModel) -> None:
    answer = ocr.answer("What is the person doing?", [image_item(frame(sign()))])
    assert answer.startswith("I cannot describe scenes, objects, people or actions: livesight/ocr")
    assert '"LOADING DOCK B"' in answer


def test_segment_with_a_ticking_clock_and_a_moving_disc(ocr: OcrModel) -> None:
    answer = ocr.answer("What happened in the last 5 seconds?", [clock_segment(5)])
    assert "This segment has 5 frames from stream time 10.0 s to 14.0 s (4.0 s, frame_index 300 to 420)." in answer
    assert "I read text in all 5 frames." in answer
    assert '"LOADING DOCK B" is visible in the centre in all 5 frames I read.' in answer
    assert (
        'The text at the bottom right changed: "12:00:00" at stream time 10.0 s (frame_index 300) became "12:00:04" at '
        "stream time 14.0 s (frame_index 420) (5 different readings in 5 frames)."
    ) in answer
    assert "As a clock it advanced 4 s while 4.0 s of stream time passed." in answer
    change = re.search(r"the picture changed by ([\d.]+)% on average", answer)
    assert change is not None
    assert float(change.group(1)) > 0.5  # the disc moved
    assert "mostly at the top" in answer  # the disc moves along the top third


def test_segment_time_question(ocr: OcrModel) -> None:
    answer = ocr.answer("What time does the clock show?", [clock_segment(3)])
    assert answer.split(". ")[2].startswith('The text at the bottom right changed: "12:00:00"')
    assert "The newest frame reached the server at 2025-11-24 22:50:12 UTC." in answer


def test_segment_motion_depends_on_the_pixels(ocr: OcrModel) -> None:
    still = ocr.answer("did anything move?", [clock_segment(3, moving=False)])
    moving = ocr.answer("did anything move?", [clock_segment(3, moving=True)])
    assert "it looks static" in still
    assert "it looks static" not in moving
    assert moving.split(". ")[1].startswith("Between consecutive frames the picture changed by")


def test_long_segments_read_a_bounded_spread_of_frames(reader: TextReader) -> None:
    model = OcrModel(reader=reader, max_ocr_frames=3)
    frames = [frame(clock_scene(i, width=320, height=180), index=i, timestamp_ms=500 * i) for i in range(30)]
    answer = model.answer("what does it say", [segment_item(frames)])
    assert "This segment has 30 frames from stream time 0.0 s to 14.5 s" in answer
    assert (
        "To stay fast I read text in 3 of the 30 frames (at most 3 per segment), spread evenly over the segment: "
        "frame_index 0, 14 and 29."
    ) in answer
    assert "(3 different readings in 3 frames)" in answer


def test_the_request_budget_is_shared_between_items(reader: TextReader) -> None:
    model = OcrModel(reader=reader, max_ocr_frames=4, max_ocr_frames_per_request=2)
    seg = [frame(clock_scene(i, width=320, height=180), index=i, timestamp_ms=1000 * i) for i in range(4)]
    answer = model.answer("", [segment_item(seg), segment_item(seg), image_item(seg[0])])
    first, second, third = answer.split("\n\n")
    limit = "(this request may have text read in at most 2 frames in all): the newest, frame_index 3."
    assert f"I read text in 1 of the 4 frames {limit}" in first
    assert f"I read text in 1 of the 4 frames {limit}" in second
    assert third.startswith(
        "Image 3: I did not read text in this image: this request already had text read in 2 frames, "
        "the most one request may."
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "could not be decoded: the image is empty (0 bytes)."),
        (b"\x00garbage", "could not be decoded: the bytes are not a recognised image format."),
        (jpeg(draw(sign()))[:2000], "could not be decoded: the image data is truncated or corrupt."),
    ],
    ids=["empty", "garbage", "truncated"],
)
def test_undecodable_images_are_answered_in_words(ocr: OcrModel, data: bytes, expected: str) -> None:
    assert expected in ocr.answer("what does it say?", [image_item(raw_frame(data))])


def test_a_segment_with_a_corrupt_frame(ocr: OcrModel) -> None:
    good = clock_segment(3).frames
    broken = MediaFrame(jpeg=b"\xff\xd8broken", width=1280, height=720, index=999, timestamp_ms=10_500)
    answer = ocr.answer("text?", [segment_item([good[0], broken, good[1], good[2]])])
    assert "1 frame could not be decoded and was skipped (frame_index 999)" in answer
    assert "I read text in all 3 frames." in answer
    assert '"12:00:00"' in answer


@pytest.mark.parametrize(("w", "h"), [(1, 1), (2, 300), (300, 2), (7, 7), (8, 8), (33, 17)])
def test_tiny_frames(ocr: OcrModel, w: int, h: int) -> None:
    answer = ocr.answer("what does it say", [image_item(raw_frame(jpeg(Image.new("RGB", (w, h), (9, 200, 9)))))])
    assert f"{w}×{h}" in answer
    if min(w, h) < 8:
        assert "it is too small to hold readable text" in answer
    else:
        assert "I found no text: the image is blank (a single flat green colour)." in answer


def test_png_inline_images(ocr: OcrModel) -> None:
    answer = ocr.answer("read it", [image_item(raw_frame(png(draw(sign("PLATFORM 9")))))])
    assert '"PLATFORM 9"' in answer
    assert "frame_index" not in answer


def test_empty_media(ocr: OcrModel) -> None:
    assert ocr.answer("What does the sign say?", []).startswith("No image or video was attached")


def test_deterministic_and_cached(reader: TextReader, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real_read = reader.read

    def counting_read(rgb: object) -> object:
        calls.append(1)
        return real_read(rgb)  # type: ignore[arg-type]

    monkeypatch.setattr(reader, "read", counting_read)
    media = [clock_segment(3)]
    first = OcrModel(reader=reader).answer("what time is it?", media)
    model = OcrModel(reader=reader)
    assert model.answer("what time is it?", media) == first
    assert len(calls) == 6  # two models, three frames each
    assert model.answer("what time is it?", media) == first
    assert model.answer("what time is it?", [image_item(media[0].frames[-1])]).count('"12:00:02"') == 1
    assert len(calls) == 6  # the same JPEG bytes are read once per model


def test_answers_from_many_threads_match_sequential_answers(ocr: OcrModel) -> None:
    jobs = [("what does it say?", [image_item(frame(sign(text)))]) for text in ("NORTH", "SOUTH", "EAST", "WEST")]
    jobs.append(("what time is it?", [clock_segment(3)]))
    with ThreadPoolExecutor(max_workers=5) as pool:
        parallel = list(pool.map(lambda job: ocr.answer(*job), jobs * 2))
    sequential = [ocr.answer(*job) for job in jobs] * 2
    assert parallel == sequential
    for text, answer in zip(("NORTH", "SOUTH", "EAST", "WEST"), parallel, strict=False):
        assert f'"{text}"' in answer


@pytest.mark.parametrize(
    ("count", "n", "picked"),
    [(0, 5, ()), (1, 5, (4,)), (2, 5, (0, 4)), (3, 5, (0, 2, 4)), (5, 5, (0, 1, 2, 3, 4)), (9, 5, (0, 1, 2, 3, 4)),
     (3, 30, (0, 14, 29)), (6, 60, (0, 12, 24, 35, 47, 59)), (3, 0, ())],
)  # fmt: skip
def test_spread(count: int, n: int, picked: tuple[int, ...]) -> None:
    assert spread(list(range(n)), count) == picked


def test_a_bug_while_decoding_is_logged_not_passed_off_as_bad_image_data(
    ocr: OcrModel, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Only ImageUndecodable means "this frame is unreadable"; any other exception is a bug: it reaches the
    model's last-resort boundary, which logs it with its traceback and says so (no stack trace to the caller)."""

    def broken(data: bytes, max_side: int = 128) -> object:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("livesight.backends.ocr.model.decode_small", broken)
    with caplog.at_level("ERROR", logger="livesight"):
        answer = ocr.answer("What does the sign say?", [image_item(frame(sign()))])
    assert "internal error in livesight/ocr" in answer
    assert "could not be read" not in answer
    failures = [r for r in caplog.records if r.getMessage() == "livesight/ocr failed to answer"]
    assert failures and failures[0].exc_info and failures[0].exc_info[0] is ZeroDivisionError
