"""Engine profiles render resolved media the way each engine accepts it."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from livesight.backends.body import encode_body
from livesight.backends.render import Profile, Renderer, grid_slots
from livesight.backends.request import MediaPart, Message, Part, PassPart, TextPart
from livesight.core.media import MediaFrame, MediaItem
from tests.support.frames import text_jpeg

JPEG = text_jpeg("X", 64, 48)


def user(*parts: MediaItem | Part) -> Message[Part]:
    return Message("user", tuple(MediaPart(p) if isinstance(p, MediaItem) else p for p in parts))


async def render(profile: Profile, *messages: Message[Part]) -> tuple[list[Any], dict[str, Any], int]:
    """(messages, extra, images) as the upstream receives them: the body encoded, then parsed."""
    rendered = await Renderer(profile).render(messages)
    sent = json.loads(encode_body({"messages": rendered.messages}).join())
    return sent["messages"], rendered.extra, rendered.images


def segment(stamps: list[int], fps: float = 2.0, sid: str = "s") -> MediaItem:
    frames = tuple(MediaFrame(JPEG, 64, 48, index=i + 10, timestamp_ms=t) for i, t in enumerate(stamps))
    return MediaItem("video", "ovs://…", frames, stream_id=sid, max_fps=fps)


def image() -> MediaItem:
    return MediaItem("image", "ovs://…", (MediaFrame(JPEG, 64, 48, index=5, timestamp_ms=500),), stream_id="s")


def test_grid_slots_follow_stream_time() -> None:
    assert grid_slots(segment([1000, 1500, 2000, 3000], fps=2)) == [0, 1, 2, 4]
    assert grid_slots(segment([0, 10, 20], fps=2)) == [0, 1, 2], "strictly increasing even when frames bunch up"


async def test_vllm_profile() -> None:
    item = segment([1000, 1500, 2500])
    messages, extra, _ = await render("vllm", user(item, TextPart("q")))
    parts = messages[0]["content"]
    assert parts[0]["type"] == "text" and "3 frames" in parts[0]["text"]
    video = parts[1]
    assert video["type"] == "video_url"
    prefix, _, data = video["video_url"]["url"].partition(",")
    assert prefix == "data:video/jpeg;base64"
    assert [base64.b64decode(f) for f in data.split(",")] == [JPEG] * 3
    assert video["uuid"].startswith("s:10-12:")
    assert parts[2] == {"type": "text", "text": "q"}
    assert extra == {
        "media_io_kwargs": {"video": {"fps": 2.0, "frames_indices": [0, 1, 3], "num_frames": 3, "total_num_frames": 4}}
    }


async def test_vllm_profile_with_disagreeing_segments_falls_back_to_images() -> None:
    a, b = segment([0, 500]), segment([0, 500, 1000])
    messages, extra, images = await render("vllm", user(a, b))
    assert extra == {} and images == 5
    kinds = [p["type"] for p in messages[0]["content"]]
    assert kinds.count("image_url") == 5 and "video_url" not in kinds
    uuids = [p.get("uuid") for p in messages[0]["content"] if p["type"] == "image_url"]
    assert uuids == ["s:10", "s:11", "s:10", "s:11", "s:12"], "each frame sent as an image keeps its own uuid"


async def test_frame_uuids_are_stream_and_frame_index_and_stable_across_requests() -> None:
    first, _, _ = await render("vllm", user(image(), TextPart("what is it?")))
    again, _, _ = await render("vllm", user(TextPart("and now?"), image()))
    assert first[0]["content"][0]["uuid"] == "s:5" == again[0]["content"][1]["uuid"]
    seg_a, _, _ = await render("vllm", user(segment([1000, 1500, 2500])))
    seg_b, _, _ = await render("vllm", user(segment([1000, 1500, 2500]), TextPart("q")))
    assert seg_a[0]["content"][1]["uuid"] == seg_b[0]["content"][1]["uuid"]
    other, _, _ = await render("vllm", user(segment([1000, 1500, 2500], sid="t")))
    assert other[0]["content"][1]["uuid"] != seg_a[0]["content"][1]["uuid"], "another stream, another uuid"
    inline = MediaItem("image", "data:…", (MediaFrame(JPEG, 64, 48),))
    sent, _, _ = await render("vllm", user(inline))
    assert "uuid" not in sent[0]["content"][0], "a picture that is not a stream's frame has no stable name"


@pytest.mark.parametrize("profile", ["vllm", "mp4", "frames"])
async def test_images_are_jpeg_data_urls_and_messages_without_media_are_untouched(profile: Profile) -> None:
    plain: Message[Part] = Message("system", "be brief", {"name": "rules"})
    unset: Message[Part] = Message("assistant", None, {"tool_calls": []}, content_set=False)
    inline = PassPart("image_url", {"type": "image_url", "image_url": {"url": "https://example.test/a.jpg"}})
    messages, _, images = await render(profile, plain, unset, user(image(), inline))
    assert messages[0] == {"role": "system", "name": "rules", "content": "be brief"}
    assert messages[1] == {"role": "assistant", "tool_calls": []}, "content the client did not send is not sent"
    part, sent_inline = messages[2]["content"]
    assert sent_inline == inline.raw and images == 2
    assert part["image_url"]["url"] == "data:image/jpeg;base64," + base64.b64encode(JPEG).decode()
    assert ("uuid" in part) == (profile == "vllm")


async def test_frames_profile_labels_each_frame() -> None:
    messages, extra, _ = await render("frames", user(segment([2000, 2500])))
    texts = [p["text"] for p in messages[0]["content"] if p["type"] == "text"]
    assert texts[1:] == ["t=+0.0s (stream time 2.000s, frame_index 10)", "t=+0.5s (stream time 2.500s, frame_index 11)"]
    assert extra == {}


async def test_mp4_profile() -> None:
    messages, _, images = await render("mp4", user(segment([0, 500, 1000])))
    assert images == 0
    url = messages[0]["content"][1]["video_url"]["url"]
    assert url.startswith("data:video/mp4;base64,")
    assert base64.b64decode(url.split(",", 1)[1])[4:8] == b"ftyp"
