"""The test pattern is readable by our own model: `livesight/ocr` reads "FRAME <n>", the clock and the label
exactly, above its default min_score, on frames as the server stores them (ingest's JPEG encoding at the
default quality and size), also after a VP8 encode/decode (what a WebRTC publisher sends)."""

from __future__ import annotations

import re
import time
from fractions import Fraction

import av
import numpy as np
import pytest

from livesight.backends.imaging import decode_rgb
from livesight.backends.ocr import OcrModel
from livesight.backends.ocr.reader import TextReader
from livesight.codec.jpeg import encode_jpeg
from livesight.core.media import MediaFrame, MediaItem
from livesight.ingest.pattern import TestPattern
from livesight.settings import ModelConfig, Settings

NOW = 1_764_600_000.0  # a fixed wall clock, so the clock text is known
SETTINGS = Settings()


def video_frame(pattern: TestPattern, n: int) -> av.VideoFrame:
    data = np.frombuffer(pattern.render(n, now=NOW + n / 30), np.uint8)
    return av.VideoFrame.from_ndarray(data.reshape(pattern.height * 3 // 2, pattern.width), format="yuv420p")


def stored_jpeg(frame: av.VideoFrame) -> bytes:
    """What the server keeps of a decoded frame (ingest/frames.py at the default settings)."""
    return encode_jpeg(frame, max_side=SETTINGS.frame_max_side, quality=SETTINGS.jpeg_quality).jpeg


def vp8_round_trip(frames: list[av.VideoFrame], bit_rate: int) -> list[av.VideoFrame]:
    """Encode with libvpx in real-time mode (as a WebRTC sender does) and decode again."""
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
    encoder.bit_rate, encoder.time_base = bit_rate, Fraction(1, 30)
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    decoder = av.CodecContext.create("libvpx", "r")
    out: list[av.VideoFrame] = []
    for pts, frame in enumerate([*frames, None]):
        if frame is not None:
            frame.pts = pts
        for packet in encoder.encode(frame):
            out.extend(decoder.decode(packet))
    return out


def clock_text(n: int) -> str:
    stamp = NOW + n / 30
    return time.strftime("%H:%M:%S", time.gmtime(stamp)) + f".{int(stamp * 1000) % 1000:03d}"


def assert_reads(reader: TextReader, jpeg: bytes, pattern: TestPattern, n: int) -> None:
    lines = {line.text: line.score for line in reader.read(decode_rgb(jpeg))}
    for want in (f"FRAME {n}", clock_text(n), pattern.label):
        assert want in lines, f"{want!r} not read in frame {n} ({pattern.width}x{pattern.height}): {lines}"
        assert lines[want] >= reader.min_score


def test_the_model_reads_with_its_default_min_score(reader: TextReader) -> None:
    assert reader.min_score == ModelConfig(id="livesight/ocr", backend="builtin").min_score == 0.9


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (640, 360)])
@pytest.mark.parametrize("n", [0, 7, 42, 1141, 30517])
def test_stored_pattern_frames_read_exactly(reader: TextReader, width: int, height: int, n: int) -> None:
    pattern = TestPattern(width, height)
    assert_reads(reader, stored_jpeg(video_frame(pattern, n)), pattern, n)


@pytest.mark.parametrize(("width", "height", "bit_rate"), [(1280, 720, 1_700_000), (640, 360, 450_000)])
def test_pattern_reads_after_vp8(reader: TextReader, width: int, height: int, bit_rate: int) -> None:
    pattern = TestPattern(width, height)
    numbers = list(range(1120, 1142))  # the encoder settles; the last frames are inter-coded
    decoded = vp8_round_trip([video_frame(pattern, n) for n in numbers], bit_rate)
    assert len(decoded) == len(numbers)
    for n, frame in list(zip(numbers, decoded, strict=True))[-2:]:
        assert_reads(reader, stored_jpeg(frame), pattern, n)


def test_readme_question_about_the_pattern(ocr: OcrModel) -> None:
    """README: `livesight publish test-pattern`, then `livesight ask STREAM_ID "What does the sign say?"`."""
    pattern = TestPattern(1280, 720)
    frame = MediaFrame(stored_jpeg(video_frame(pattern, 1141)), 1280, 720, index=1141, timestamp_ms=38033)
    answer = ocr.answer("What does the sign say?", [MediaItem(kind="image", url="ovs://x", frames=(frame,))])
    readme = (
        'I read 3 lines of text: "14:40:38.033" at the top left (the largest), "FRAME 1141" at the top left '
        'and "LIVESIGHT TEST PATTERN" on the left.'
    )  # quoted in README.md ("Publish video")
    assert clock_text(1141) == "14:40:38.033"
    assert answer.startswith(readme), answer
    assert not re.search(r"read with \d+% confidence", answer), answer
