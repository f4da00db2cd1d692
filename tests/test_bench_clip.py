"""The ingest benchmark's pre-encoded clip (bench/clip.py): every frame decodes and reads its own number,
keyframes come exactly every GOP, and the cache returns the same clip."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import cast

import av
import pytest
from av.video.codeccontext import VideoCodecContext
from bench.clip import ClipSpec, describe, load_or_encode

from livesight.ingest.pattern import read_frame_number

DECODER = {"vp8": "libvpx", "h264": "h264"}


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_clip_frames_decode_to_their_own_numbers(codec: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # what gettempdir() returns: the cache goes here
    spec = ClipSpec(codec=codec, width=320, height=180, fps=30, bitrate=300_000, gop=10, frames=30)
    frames = load_or_encode(spec)
    assert spec.cache_path.is_relative_to(tmp_path) and spec.cache_path.exists()
    assert describe(spec, frames)["keyframes_at"] == [0, 10, 20]
    decoder = cast(VideoCodecContext, av.CodecContext.create(DECODER[codec], "r"))
    decoded = [f for data, _ in frames for f in decoder.decode(av.Packet(data))] + list(decoder.decode(None))
    numbers = [read_frame_number(f.to_ndarray(format="gray")) for f in decoded]
    assert numbers == list(range(30))
    assert load_or_encode(spec) == frames  # from the cache
