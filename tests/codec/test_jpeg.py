"""Decoded frame → capped size → full-range JPEG; the test pattern's number survives the trip."""

from __future__ import annotations

import asyncio

import av
import numpy as np
import pytest
import simplejpeg
from hypothesis import given
from hypothesis import strategies as st

from livesight.codec.jpeg import FrameEncoder, capped_size, encode_jpeg
from livesight.ingest.pattern import TestPattern, read_frame_number


def pattern_frame(width: int, height: int, n: int) -> av.VideoFrame:
    data = np.frombuffer(TestPattern(width, height).render(n), np.uint8).reshape(height * 3 // 2, width)
    return av.VideoFrame.from_ndarray(data, format="yuv420p")


@given(st.integers(2, 4000), st.integers(2, 4000), st.integers(16, 2000))
def test_capped_size(width: int, height: int, max_side: int) -> None:
    w, h = capped_size(width, height, max_side)
    assert w % 2 == 0
    assert h % 2 == 0
    assert max(w, h) <= max(max_side, 2)
    assert w <= max(width, 2)
    assert h <= max(height, 2)
    if max(width, height) <= max_side:
        assert (w, h) == (max(2, width // 2 * 2), max(2, height // 2 * 2))
    elif min(w, h) >= 100:
        assert abs((w / h) / (width / height) - 1) < 0.03


@pytest.mark.parametrize(
    ("size", "max_side", "expected"),
    [((1280, 720), 1280, (1280, 720)), ((1920, 1080), 1280, (1280, 720)), ((640, 480), 320, (320, 240))],
)
def test_encode_caps_resolution_and_keeps_the_number(
    size: tuple[int, int], max_side: int, expected: tuple[int, int]
) -> None:
    encoded = encode_jpeg(pattern_frame(*size, 4242), max_side=max_side, quality=80)
    assert (encoded.width, encoded.height) == expected
    assert simplejpeg.decode_jpeg_header(encoded.jpeg)[:2] == (expected[1], expected[0])
    luma = simplejpeg.decode_jpeg(encoded.jpeg, colorspace="GRAY")[:, :, 0]
    assert read_frame_number(luma) == 4242


def test_limited_range_video_becomes_full_range_jpeg() -> None:
    # limited-range black (16) and white (235) must become JPEG black (~0) and white (~255)
    y = np.full((64, 64), 16, np.uint8)
    y[:, 32:] = 235
    data = np.concatenate([y.reshape(-1), np.full(2 * 32 * 32, 128, np.uint8)]).reshape(96, 64)
    frame = av.VideoFrame.from_ndarray(data, format="yuv420p")
    luma = simplejpeg.decode_jpeg(encode_jpeg(frame, max_side=1280, quality=95).jpeg, colorspace="GRAY")[:, :, 0]
    assert luma[:, :24].mean() < 6
    assert luma[:, 40:].mean() > 249


def test_rgb_frames_are_encoded_too() -> None:
    rgb = np.zeros((90, 160, 3), np.uint8)
    rgb[:, :, 0] = 255
    encoded = encode_jpeg(av.VideoFrame.from_ndarray(rgb, format="rgb24"), max_side=1280, quality=90)
    decoded = simplejpeg.decode_jpeg(encoded.jpeg)
    assert decoded[..., 0].mean() > 240
    assert decoded[..., 1].mean() < 15


def test_encoder_pool_runs_off_the_event_loop() -> None:
    encoder = FrameEncoder(2, max_side=320, quality=70)

    async def go() -> list[int | None]:
        results = await asyncio.gather(*(encoder.submit(pattern_frame(640, 480, n)) for n in range(6)))
        return [read_frame_number(simplejpeg.decode_jpeg(r.jpeg, colorspace="GRAY")[:, :, 0]) for r in results]

    try:
        assert asyncio.run(go()) == list(range(6))
    finally:
        encoder.close()


@given(st.integers(0, 65535), st.sampled_from([(160, 90), (640, 480), (1280, 720)]))
def test_pattern_number_round_trips(n: int, size: tuple[int, int]) -> None:
    width, height = size
    luma = np.frombuffer(TestPattern(width, height).render(n), np.uint8, count=width * height).reshape(height, width)
    assert read_frame_number(luma) == n


def test_unreadable_frames_read_as_none() -> None:
    assert read_frame_number(np.full((480, 640), 128, np.uint8)) is None
    assert read_frame_number(np.zeros((480, 640), np.uint8)) is None


def test_pattern_rejects_odd_sizes() -> None:
    with pytest.raises(ValueError, match="even"):
        TestPattern(641, 480)
