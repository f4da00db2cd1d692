from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livesight.backends.ocr.intent import Topic, classify

T = Topic
CASES = [
    # question, lead topic, asks beyond what the model can do
    ("What does the sign say?", T.TEXT, False),
    ("Read the licence plate", T.TEXT, False),
    ("What is written on the banner?", T.TEXT, False),
    ("What time is it?", T.TIME, False),
    ("What time does the clock show?", T.TIME, False),
    ("Which colour is dominant?", T.COLOUR, False),
    ("What color is the car?", T.COLOUR, True),
    ("Is it dark in the room?", T.BRIGHTNESS, False),
    ("Are the lights on?", T.BRIGHTNESS, False),
    ("Did anything move in the last 5 seconds?", T.MOTION, False),
    ("How much changed?", T.MOTION, False),
    ("What is the resolution?", T.SIZE, False),
    ("What is the person doing?", None, True),
    ("Describe the scene", None, True),
    ("How many people are there?", None, True),
    ("What do you see?", None, True),
    ("What is this?", None, True),
    ("What happened?", T.MOTION, True),  # leads with change between frames, and says it cannot describe
    ("", None, False),
    ("   ", None, False),
    ("Which text changed, and what time is it?", T.TEXT, False),
    ("What time is it and what does the sign say", T.TIME, False),
    ("Is the dog on the sign?", T.TEXT, True),
    ("ALREADY? reading", T.TEXT, False),
    ("ready", None, True),  # whole words only: "ready" is not "read"
]


@pytest.mark.parametrize(("question", "lead", "beyond"), CASES)
def test_classify(question: str, lead: Topic | None, beyond: bool) -> None:
    intent = classify(question)
    assert intent.lead == lead
    assert intent.beyond is beyond


def test_topics_in_order_of_mention() -> None:
    assert classify("how bright, what colour, what size, any text?").topics == (
        T.BRIGHTNESS,
        T.COLOUR,
        T.SIZE,
        T.TEXT,
    )


@given(st.text(max_size=300))
def test_classify_any_text(question: str) -> None:
    intent = classify(question)
    assert len(set(intent.topics)) == len(intent.topics)
    assert intent.beyond or intent.topics or not question.strip()
