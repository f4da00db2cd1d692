"""Publisher sources (no network): the test pattern and a video file read with PyAV."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from livesight.core.errors import PublishError
from livesight.ingest.pattern import read_frame_number
from livesight.ingest.publisher import AVSource, PatternSource, i420_luma, publish_options
from tests.support.video import write_video

pytestmark = pytest.mark.timeout(30)


def take(source: object, count: int) -> list[object]:
    async def go() -> list[object]:
        out = []
        frames = source.frames()  # type: ignore[attr-defined]
        async for frame in frames:
            out.append(frame)
            if len(out) == count:
                break
        await frames.aclose()
        return out

    return asyncio.run(go())


def test_pattern_source_numbers_its_frames() -> None:
    frames = take(PatternSource(320, 180, 30), 5)
    numbers = [read_frame_number(i420_luma(f.i420, f.width, f.height)) for f in frames]  # type: ignore[attr-defined]
    assert numbers == [0, 1, 2, 3, 4]


def test_file_source_plays_at_native_rate_and_loops(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    write_video(path, frames=10, fps=20, size=(320, 240))
    source = AVSource(str(path), loop=True)
    assert (source.width, source.height) == (320, 240)
    assert source.fps == 20
    started = time.monotonic()
    frames = take(source, 15)
    elapsed = time.monotonic() - started
    numbers = [read_frame_number(i420_luma(f.i420, f.width, f.height)) for f in frames]  # type: ignore[attr-defined]
    assert numbers == [*range(10), *range(5)]  # looped
    assert elapsed >= 0.4  # 10 frames at 20 fps per loop: paced, not decoded as fast as possible


def test_file_source_without_loop_ends(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    write_video(path, frames=4, fps=50, size=(160, 120))
    assert len(take(AVSource(str(path)), 100)) == 4


def test_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PublishError, match="cannot open"):
        AVSource(str(tmp_path / "nope.mp4"))


def test_only_decodable_codecs_can_be_pinned() -> None:
    assert publish_options("vp8", 30).simulcast is False
    assert publish_options("H264", 30, 2_000_000).video_encoding.max_bitrate == 2_000_000
    with pytest.raises(PublishError, match="vp8 or h264"):
        publish_options("vp9", 30)
