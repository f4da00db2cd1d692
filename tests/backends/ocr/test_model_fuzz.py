"""Property tests: `answer` never raises and always answers in words, whatever the bytes, sizes or question."""

from __future__ import annotations

import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from livesight.backends.ocr import OcrModel
from livesight.core.media import MediaFrame, MediaItem
from tests.backends.ocr.pictures import draw, jpeg, sign

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SIGN_JPEG = jpeg(draw(sign()))


def check(answer: str) -> None:
    assert isinstance(answer, str)
    assert answer.strip()
    assert "Traceback" not in answer
    assert "internal error" not in answer  # the last-resort branch is for bugs, and there should be none


@st.composite
def pictures(draw: st.DrawFn) -> bytes:
    w = draw(st.integers(1, 96))
    h = draw(st.integers(1, 96))
    seed = draw(st.integers(0, 2**32 - 1))
    noise = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    mode = draw(st.sampled_from(["RGB", "L", "RGBA", "P", "1", "CMYK"]))
    fmt = draw(st.sampled_from(["JPEG", "PNG", "GIF", "BMP", "WEBP"]))
    out = io.BytesIO()
    try:
        Image.fromarray(noise).convert(mode).save(out, fmt)
    except (OSError, ValueError):  # this format cannot hold this mode
        out = io.BytesIO()
        Image.fromarray(noise).save(out, fmt)
    data = out.getvalue()
    cut = draw(st.one_of(st.none(), st.integers(0, max(0, len(data) - 1))))
    return data if cut is None else data[:cut]


payloads = st.one_of(st.binary(max_size=2000), pictures(), st.just(0).map(lambda _: SIGN_JPEG))
stamps = st.one_of(st.none(), st.integers(-(2**40), 2**40))
frames = st.builds(
    MediaFrame,
    jpeg=payloads,
    width=st.integers(-5, 10_000),
    height=st.integers(-5, 10_000),
    index=stamps,
    timestamp_ms=stamps,
    arrived_at_ms=stamps,
)
items = st.builds(
    MediaItem,
    kind=st.sampled_from(["image", "video"]),
    url=st.text(max_size=30),
    frames=st.lists(frames, max_size=4).map(tuple),
)


@SETTINGS
@given(question=st.text(max_size=100), media=st.lists(items, max_size=3))
def test_answer_never_raises(ocr: OcrModel, question: str, media: list[MediaItem]) -> None:
    check(ocr.answer(question, media))


@SETTINGS
@given(data=st.binary(max_size=5000))
def test_arbitrary_bytes_are_answered_in_words(ocr: OcrModel, data: bytes) -> None:
    answer = ocr.answer("what does it say?", [MediaItem(kind="image", url="data:", frames=(MediaFrame(data, 0, 0),))])
    check(answer)


@SETTINGS
@given(data=pictures())
def test_arbitrary_pictures_are_answered_in_words(ocr: OcrModel, data: bytes) -> None:
    answer = ocr.answer("", [MediaItem(kind="image", url="data:", frames=(MediaFrame(data, 0, 0),))])
    check(answer)
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            size = image.size
    except Exception:
        return
    assert f"{size[0]}×{size[1]}" in answer
