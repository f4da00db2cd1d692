"""Answer composition from hand-made observations (no OCR): wording, ordering, honesty."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livesight.backends.ocr.compose import compose
from livesight.backends.ocr.facts import Change, FrameFacts, ItemFacts
from livesight.backends.ocr.reader import TextLine
from livesight.backends.ocr.stats import FrameStats

BLUE = FrameStats(width=1280, height=720, brightness=83.0, contrast=40.0, colours=(("blue", 0.7), ("red", 0.2)))
BLACK = FrameStats(width=640, height=480, brightness=0.0, contrast=0.0, colours=(("black", 1.0),))

SIGN = TextLine("LOADING DOCK B", 0.99, (420, 330, 860, 390))  # centre, 60 px high
CAM = TextLine("CAM 03", 0.97, (20, 20, 160, 50))  # top left, 30 px
CLOCK = TextLine("12:00:05", 0.99, (1000, 650, 1200, 690))  # bottom right, 40 px
FAINT = TextLine("EXIT", 0.91, (1100, 40, 1200, 70))  # top right, low-ish confidence


def image(
    lines: tuple[TextLine, ...] | None = (SIGN, CAM, CLOCK), stats: FrameStats | None = BLUE, **kw: object
) -> ItemFacts:
    facts = FrameFacts(position=0, index=450, timestamp_ms=15_000, arrived_at_ms=1_764_024_615_000, stats=stats,
                       lines=lines, **kw)  # type: ignore[arg-type]  # fmt: skip
    return ItemFacts(kind="image", frames=(facts,), chosen=(0,) if lines is not None else ())


def clock_segment(n: int = 5, *, chosen: tuple[int, ...] | None = None, limit: str | None = None) -> ItemFacts:
    frames = []
    picked = tuple(range(n)) if chosen is None else chosen
    for i in range(n):
        lines = (SIGN, TextLine(f"12:00:{i:02d}", 0.99, CLOCK.box)) if i in picked else None
        frames.append(
            FrameFacts(position=i, index=300 + 30 * i, timestamp_ms=10_000 + 1000 * i, stats=BLUE, lines=lines)
        )
    changes = tuple(Change(i - 1, i, 1.0 + (3.0 if i == 3 else 0.0), (0.2, 0.2)) for i in range(1, n))
    return ItemFacts(kind="video", frames=tuple(frames), changes=changes, chosen=picked, ocr_limit=limit)


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if s]


def test_no_media_says_so_and_what_the_model_does() -> None:
    answer = compose("What does the sign say?", [])
    assert answer.startswith("No image or video was attached")
    assert "reads text" in answer
    assert "ovs://streams/<stream_id>?frame_index=-1" in answer


def test_image_quotes_text_exactly_with_positions_largest_first() -> None:
    answer = compose("What does the sign say?", [image()])
    assert answer.startswith('I read 3 lines of text: "LOADING DOCK B" in the centre (the largest), "12:00:05" at the '
                             'bottom right and "CAM 03" at the top left.')  # fmt: skip
    assert "1280×720" in answer
    assert "frame_index 450" in answer
    assert "stream time 15.0 s" in answer
    assert "mean luma 83 of 255" in answer
    assert "mostly blue (70%) with red (20%)" in answer
    assert "cannot describe" not in answer


def test_confidence_is_mentioned_only_when_it_helps() -> None:
    answer = compose("read it", [image((SIGN, FAINT))])
    assert '"EXIT" at the top right (read with 91% confidence)' in answer
    assert (
        'LOADING DOCK B" in the centre (the largest),' in answer
        or '"LOADING DOCK B" in the centre (the largest)' in answer
    )
    assert answer.count("confidence") == 1


def test_time_questions_lead_with_time_like_text_and_arrival_time() -> None:
    answer = compose("What time is it?", [image()])
    first = sentences(answer)[0]
    assert first == 'Time-like text in the image: "12:00:05" at the bottom right.'
    assert "reached the server at 2025-11-24 22:50:15 UTC" in answer
    assert 'Other text in the image: "LOADING DOCK B" in the centre and "CAM 03" at the top left.' in answer


def test_time_question_without_a_clock_says_so() -> None:
    answer = compose("what time is it", [image((SIGN,))])
    assert answer.startswith("I found no clock or time-like text in the image.")
    assert '"LOADING DOCK B"' in answer


@pytest.mark.parametrize(
    ("question", "first"),
    [
        ("What colour dominates?", "The dominant colours are blue (70% of the frame) and red (20% of the frame)."),
        ("Is it dark?", "The image (frame_index 450, stream time 15.0 s) is moderately bright (mean luma 83 of 255)."),
        ("What is the resolution?", "The image (frame_index 450, stream time 15.0 s) is 1280×720 pixels."),
        ("Did anything move?", "A single image cannot show motion or change;"),
    ],
)
def test_lead_follows_the_question(question: str, first: str) -> None:
    answer = compose(question, [image()])
    assert answer.startswith(first)
    assert '"LOADING DOCK B"' in answer


def test_a_fact_used_as_lead_is_not_repeated() -> None:
    assert compose("what colour?", [image()]).count("blue") == 1
    assert compose("how bright is it?", [image()]).count("mean luma") == 1


def test_beyond_questions_say_plainly_what_the_model_cannot_do_then_answer() -> None:
    answer = compose("What is the person doing?", [image()])
    first, rest = answer.split("\n\n", 1)
    assert first.startswith("I cannot describe scenes, objects, people or actions")
    assert "reads text" in first
    assert '"LOADING DOCK B"' in rest


def test_black_frame_says_no_text_and_blank() -> None:
    answer = compose("What does it say?", [image((), BLACK)])
    assert answer.startswith("I found no text: the image is blank (a single flat black colour).")
    assert "very dark" not in answer  # a blank frame is described as blank, not by a brightness word
    assert "mean luma 0 of 255" in answer


def test_frame_without_text_and_not_blank() -> None:
    assert compose("text?", [image(())]).startswith("I found no readable text in this image.")


def test_undecodable_image() -> None:
    item = image(None, None, problem="the bytes are not a recognised image format")
    answer = compose("", [item])
    assert answer.startswith(
        "The image (frame_index 450, stream time 15.0 s) could not be decoded: the bytes are not a"
    )


def test_inline_image_without_stream_facts() -> None:
    item = ItemFacts(kind="image", frames=(FrameFacts(position=0, stats=BLUE, lines=(SIGN,)),), chosen=(0,))
    answer = compose("sign?", [item])
    assert "frame_index" not in answer
    assert "stream time" not in answer
    assert "The image is 1280×720" in answer


def test_item_without_frames() -> None:
    assert (
        compose("", [ItemFacts(kind="video", frames=())]) == "The segment has no frames, so there is nothing to read."
    )


def test_several_items_are_labelled() -> None:
    answer = compose("text?", [image(), clock_segment()])
    paragraphs = answer.split("\n\n")
    assert paragraphs[0].startswith("Image 1: I read 3 lines")
    assert paragraphs[1].startswith("Segment 2: This segment has 5 frames")


def test_segment_reports_span_text_over_time_and_change() -> None:
    answer = compose("Which text is there?", [clock_segment()])
    assert answer.startswith(
        "This segment has 5 frames from stream time 10.0 s to 14.0 s (4.0 s, frame_index 300 to 420)."
    )
    assert "I read text in all 5 frames." in answer
    assert '"LOADING DOCK B" is visible in the centre in all 5 frames I read.' in answer
    assert (
        'The text at the bottom right changed: "12:00:00" at stream time 10.0 s (frame_index 300) became "12:00:04" at '
        "stream time 14.0 s (frame_index 420) (5 different readings in 5 frames)."
    ) in answer
    assert "As a clock it advanced 4 s while 4.0 s of stream time passed." in answer
    assert (
        "changed by 1.8% on average (a little); the largest change, 4.0%, was between stream time 12.0 s and" in answer
    )
    assert "(frame_index 360 → 390), mostly at the top left." in answer
    assert "The newest frame (frame_index 420, stream time 14.0 s) is 1280×720" in answer


def test_segment_time_question_leads_with_the_clock() -> None:
    answer = compose("What time does the clock show?", [clock_segment()])
    assert sentences(answer)[2].startswith('The text at the bottom right changed: "12:00:00"')


def test_segment_motion_question_leads_with_change() -> None:
    answer = compose("Did anything move?", [clock_segment()])
    assert sentences(answer)[1].startswith("Between consecutive frames the picture changed by 1.8% on average")


def test_segment_reading_a_subset_says_which_frames() -> None:
    answer = compose("", [clock_segment(10, chosen=(0, 3, 6, 9), limit="at most 4 per segment")])
    assert (
        "To stay fast I read text in 4 of the 10 frames (at most 4 per segment), spread evenly over the segment: "
        "frame_index 300, 390, 480 and 570."
    ) in answer
    assert '"LOADING DOCK B" is visible in the centre in all 4 frames I read.' in answer


def test_segment_static_and_partly_visible_text() -> None:
    frames = [
        FrameFacts(position=i, index=i, timestamp_ms=1000 * i, stats=BLUE, lines=(SIGN,) if i in (1, 2) else ())
        for i in range(4)
    ]
    changes = tuple(Change(i - 1, i, 0.1, (0.5, 0.5)) for i in range(1, 4))
    answer = compose("", [ItemFacts(kind="video", frames=tuple(frames), changes=changes, chosen=(0, 1, 2, 3))])
    assert (
        '"LOADING DOCK B" is visible in the centre in 2 of the 4 frames I read, from stream time 1.0 s (frame_index 1) '
        "to stream time 2.0 s (frame_index 2)."
    ) in answer
    assert (
        "The picture barely changed between consecutive frames (0.1% on average, at most 0.1%): it looks static."
        in answer
    )


def test_segment_with_undecodable_frames() -> None:
    good = [FrameFacts(position=i, index=i, stats=BLUE, lines=()) for i in (0, 2)]
    bad = FrameFacts(position=1, index=1, problem="the image data is truncated or corrupt")
    item = ItemFacts(
        kind="video", frames=(good[0], bad, good[1]), changes=(Change(0, 2, 0.0, (0.5, 0.5)),), chosen=(0, 2)
    )
    answer = compose("", [item])
    assert (
        "1 frame could not be decoded and was skipped (frame_index 1): the image data is truncated or corrupt."
        in answer
    )
    assert "I found no readable text in the frames I read." in answer


def test_segment_with_no_decodable_frames() -> None:
    bad = tuple(FrameFacts(position=i, problem="the bytes are not a recognised image format") for i in range(3))
    answer = compose("", [ItemFacts(kind="video", frames=bad)])
    assert answer == (
        "This segment has 3 frames. None of its frames could be decoded: the bytes are not a recognised image format. "
        "So there is nothing to read or measure."
    )


def test_segment_brightness_swing() -> None:
    dark = FrameStats(width=1280, height=720, brightness=20.0, contrast=5.0, colours=(("black", 0.9),))
    frames = (
        FrameFacts(position=0, timestamp_ms=0, stats=BLUE, lines=()),
        FrameFacts(position=1, timestamp_ms=1000, stats=dark, lines=()),
    )
    answer = compose("are the lights on?", [ItemFacts(kind="video", frames=frames, chosen=(0, 1),
                                                      changes=(Change(0, 1, 30.0, (0.5, 0.5)),))])  # fmt: skip
    assert sentences(answer)[1] == (
        "Brightness varied over the segment: darkest at stream time 1.0 s (mean luma 20 of 255), "
        "brightest at stream time 0.0 s (mean luma 83)."
    )


def test_single_frame_segment() -> None:
    item = ItemFacts(kind="video", frames=image().frames, chosen=(0,))
    assert compose("", [item]).startswith("This segment has a single frame. I read 3 lines")


def test_ocr_failure_is_worded() -> None:
    item = image(None, read_problem="the OCR engine failed on this frame")
    assert "I did not read text in this image: the OCR engine failed on this frame." in compose("", [item])


def test_many_lines_are_capped() -> None:
    lines = tuple(TextLine(f"LINE {i}", 0.99, (10, 10 + 30 * i, 200, 30 + 30 * i)) for i in range(20))
    answer = compose("", [image(lines)])
    assert "I read 20 lines of text:" in answer
    assert "and 8 more lines." in answer


def test_different_text_gives_a_different_answer() -> None:
    other = TextLine("GATE 7", 0.99, SIGN.box)
    assert compose("sign?", [image((SIGN,))]) != compose("sign?", [image((other,))])


@given(question=st.text(max_size=200))
def test_any_question_gives_plain_text(question: str) -> None:
    answer = compose(question, [image(), clock_segment(3)])
    assert answer == compose(question, [image(), clock_segment(3)])  # deterministic
    assert '"LOADING DOCK B"' in answer
    assert "Traceback" not in answer
    assert "None" not in answer
