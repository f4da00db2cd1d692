"""A resolved request as chat turns, images and sampling options (no model needed)."""

from __future__ import annotations

import pytest

from livesight.backends.request import ChatRequest, MediaPart, Message, PassPart, TextPart
from livesight.backends.vlm.prompt import build_prompt, sampling_of
from livesight.core.errors import RequestInvalid, TooManyImages
from livesight.core.media import MediaFrame, MediaItem
from livesight.settings import ModelConfig

CONFIG = ModelConfig(id="local/vlm", backend="transformers", weights="org/name", max_images=4)


def segment(n: int) -> MediaItem:
    frames = tuple(
        MediaFrame(jpeg=bytes([i]), width=64, height=48, index=10 + i, timestamp_ms=5_000 + 500 * i) for i in range(n)
    )
    return MediaItem(kind="video", url="ovs://s1/segment", frames=frames, stream_id="s1", max_fps=2)


def test_a_segment_is_its_intro_then_each_frame_after_its_stream_time_in_order() -> None:
    request = ChatRequest((Message("user", (MediaPart(segment(3)), TextPart("What happens?"))),))
    prompt = build_prompt(CONFIG, request)
    parts = prompt.turns[0]["content"]
    assert isinstance(parts, list)
    assert parts[0]["text"].startswith("Video segment of stream s1: 3 frames")
    labels = [p["text"] for p in parts[1:-1] if p["type"] == "text"]
    assert [label.split(" ")[0] for label in labels] == ["t=+0.0s", "t=+0.5s", "t=+1.0s"]
    assert [p["type"] for p in parts[1:7]] == ["text", "image"] * 3
    assert "frame_index 12" in labels[2] and "stream time 6.000s" in labels[2]
    assert prompt.images == [b"\x00", b"\x01", b"\x02"]
    assert parts[-1] == {"type": "text", "text": "What happens?"}


def test_media_the_model_cannot_read_is_refused() -> None:
    raw = {"type": "video_url", "video_url": {"url": "https://example.invalid/v.mp4"}}
    request = ChatRequest((Message("user", (PassPart("video_url", raw),)),))
    with pytest.raises(RequestInvalid):
        build_prompt(CONFIG, request)
    with pytest.raises(TooManyImages):
        build_prompt(CONFIG, ChatRequest((Message("user", (MediaPart(segment(5)),)),)))


def test_sampling_options_are_read_and_bounded() -> None:
    s = sampling_of(CONFIG, {"max_tokens": 5000, "temperature": 0.7, "top_p": 0.9, "seed": 3, "stop": ["\n", "END"]})
    expected = (CONFIG.max_output_tokens, 0.7, 0.9, 3, ("\n", "END"))
    assert (s.max_tokens, s.temperature, s.top_p, s.seed, s.stop) == expected
    assert sampling_of(CONFIG, {}).max_tokens == CONFIG.default_max_tokens
    assert sampling_of(CONFIG, {"stop": "x"}).stop == ("x",)
    for bad in ({"n": 2}, {"stop": ["a", "b", "c", "d", "e"]}, {"tool_choice": "required"}, {"max_tokens": 0}):
        with pytest.raises(RequestInvalid):
            sampling_of(CONFIG, bad)
