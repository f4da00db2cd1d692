"""POST /v1/chat/completions through the official openai SDK (sync + async, streaming + not) against
the real server and a fake vLLM that checks what it receives (CONTRACT §6)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from livesight.core.clock import FakeClock
from tests.api.chat_env import ChatEnv, chat_env, image_message, video_message


@pytest.fixture
def env(tmp_path: Path, clock: FakeClock) -> Iterator[ChatEnv]:
    with chat_env(tmp_path, clock) as e:
        yield e


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _extra(obj: Any) -> dict[str, Any]:
    return dict(obj.model_extra or {})


def test_newest_frame_non_streaming(env: ChatEnv) -> None:
    url = env.ovs("frame_index=-1")
    reply = env.client().chat.completions.create(
        model="qwen",
        messages=image_message(url),
        extra_body={"thread_id": "t-1"},  # type: ignore[arg-type]
    )
    seen = json.loads(reply.choices[0].message.content or "")
    assert seen["images"] == [[640, 360]]
    assert reply.model == "qwen"
    assert reply.usage is not None and reply.usage.total_tokens == 107
    overshoot = _extra(reply)["overshoot"]
    assert overshoot["frames"] == [
        {"url": url, "stream_id": env.stream_id, "frame_indexes": [99], "timestamps_ms": [9900]}
    ]
    assert overshoot["cache"] == {"thread_id": "t-1", "cache_hit": True, "cached_input_tokens": 64}
    timing = overshoot["timing"]
    assert set(timing) == {"resolve_ms", "upstream_first_token_ms", "total_ms", "newest_frame_age_ms"}
    assert timing["newest_frame_age_ms"] == 0  # the FakeClock has not moved since the newest frame
    assert timing["total_ms"] >= timing["resolve_ms"] >= 0
    sent = env.fake.requests[-1]
    assert sent["model"] == "Qwen/Qwen3-VL-8B-Instruct"
    assert "thread_id" not in sent


@pytest.mark.parametrize(
    ("query", "indexes"),
    [
        ("frame_index=0", [0]),
        ("frame_index=42", [42]),
        ("frame_index=-10", [90]),
        ("timestamp_ms=4230", [42]),
        ("timestamp_ms=4260&direction=backward", [42]),
        ("offset_ms=-2000", [79]),
        ("offset_ms=500", [5]),
    ],
)
def test_image_anchors_resolve_to_the_expected_frames(env: ChatEnv, query: str, indexes: list[int]) -> None:
    reply = env.client().chat.completions.create(model="qwen", messages=image_message(env.ovs(query)))  # type: ignore[arg-type]
    assert _extra(reply)["overshoot"]["frames"][0]["frame_indexes"] == indexes


def test_segment_as_vllm_frame_list_video(env: ChatEnv) -> None:
    url = env.ovs("start_offset_ms=-5000&max_fps=1")
    reply = env.client().chat.completions.create(model="qwen", messages=video_message(url))  # type: ignore[arg-type]
    frames = _extra(reply)["overshoot"]["frames"][0]
    assert frames["frame_indexes"] == [49, 59, 69, 79, 89, 99]
    assert frames["timestamps_ms"] == [4900, 5900, 6900, 7900, 8900, 9900]
    seen = json.loads(reply.choices[0].message.content or "")
    shas = seen["videos"][0].pop("sha256")
    assert seen["videos"] == [
        {"format": "jpeg", "frames": 6, "size": [640, 360], "fps": 1.0, "frames_indices": [0, 1, 2, 3, 4, 5]}
    ]
    with env.server.client(env.key) as c:  # the model got exactly the pixels of the frames reported
        assert shas == [_sha(c.get(f"/v1/streams/{env.stream_id}/frames/{i}").content) for i in frames["frame_indexes"]]
    assert any("4.900s" in t and env.stream_id in t for t in seen["texts"]), seen["texts"]
    assert seen["uuids"] and seen["uuids"][0].startswith(env.stream_id)
    sent = env.fake.requests[-1]
    assert sent["media_io_kwargs"]["video"]["num_frames"] == 6


def test_segment_as_frames_profile(env: ChatEnv) -> None:
    url = env.ovs("start_frame_index=10&end_frame_index=40&max_fps=2")
    reply = env.client().chat.completions.create(model="qwen-frames", messages=video_message(url))  # type: ignore[arg-type]
    frames = _extra(reply)["overshoot"]["frames"][0]
    assert frames["frame_indexes"] == [10, 15, 20, 25, 30, 35]
    seen = json.loads(reply.choices[0].message.content or "")
    assert seen["images"] == [[640, 360]] * 6
    assert seen["videos"] == []
    labels = [t for t in seen["texts"] if t.startswith("t=+")]
    assert labels[0].startswith("t=+0.0s (stream time 1.000s, frame_index 10)")
    assert labels[-1].startswith("t=+2.5s (stream time 3.500s, frame_index 35)")


def test_segment_as_mp4(env: ChatEnv) -> None:
    url = env.ovs("start_timestamp_ms=2000&end_timestamp_ms=5000&max_fps=2")
    reply = env.client().chat.completions.create(model="qwen-mp4", messages=video_message(url))  # type: ignore[arg-type]
    frames = _extra(reply)["overshoot"]["frames"][0]
    assert frames["frame_indexes"] == [20, 25, 30, 35, 40, 45]
    (video,) = json.loads(reply.choices[0].message.content or "")["videos"]
    assert video["format"] == "mp4"
    assert video["frames"] == 6
    assert video["times_ms"] == [0, 500, 1000, 1500, 2000, 2500]


def test_several_parts_and_streams_in_one_request(env: ChatEnv) -> None:
    other = env.new_stream()
    from tests.support.frames import push_frames

    push_frames(env.server, other, [0, 100, 200], label="OTHER")
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You watch cameras."},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": env.ovs("frame_index=-1")}},
                {"type": "image_url", "image_url": {"url": env.ovs("frame_index=-1", other)}},
                {"type": "text", "text": "Compare."},
            ],
        },
        {"role": "assistant", "content": "Noted."},
        {
            "role": "user",
            "content": [{"type": "video_url", "video_url": {"url": env.ovs("start_frame_index=-3&max_fps=10")}}],
        },
    ]
    reply = env.client().chat.completions.create(model="qwen", messages=messages)  # type: ignore[arg-type]
    frames = _extra(reply)["overshoot"]["frames"]
    assert [(f["stream_id"], f["frame_indexes"]) for f in frames] == [
        (env.stream_id, [99]),
        (other, [2]),
        (env.stream_id, [97, 98, 99]),
    ]
    seen = json.loads(reply.choices[0].message.content or "")
    assert len(seen["images"]) == 2
    assert seen["videos"][0]["frames"] == 3
    assert "You watch cameras." in seen["texts"] and "Noted." in seen["texts"]


def test_text_only_and_inline_images_pass_through(env: ChatEnv) -> None:
    import base64

    from tests.support.frames import text_jpeg

    data_url = "data:image/jpeg;base64," + base64.b64encode(text_jpeg("INLINE", 320, 240)).decode()
    reply = env.client().chat.completions.create(model="qwen", messages=image_message(data_url))  # type: ignore[arg-type]
    assert json.loads(reply.choices[0].message.content or "")["images"] == [[320, 240]]
    assert _extra(reply)["overshoot"]["frames"] == []
    text = env.client().chat.completions.create(model="qwen", messages=[{"role": "user", "content": "hi"}])
    assert json.loads(text.choices[0].message.content or "")["texts"] == ["hi"]


def test_tools_response_format_and_unknown_fields_are_forwarded(env: ChatEnv) -> None:
    tools = [{"type": "function", "function": {"name": "alarm", "parameters": {"type": "object", "properties": {}}}}]
    env.client().chat.completions.create(
        model="qwen",
        messages=image_message(env.ovs("frame_index=-1")),  # type: ignore[arg-type]
        tools=tools,  # type: ignore[arg-type]
        tool_choice="auto",
        response_format={"type": "json_object"},
        temperature=0.2,
        max_completion_tokens=50,
        seed=7,
        stop=["\n\n"],
        extra_body={"top_k": 5, "mm_processor_kwargs": {"fps": 2}},
    )
    sent = env.fake.requests[-1]
    assert sent["tools"] == tools
    assert sent["tool_choice"] == "auto"
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["top_k"] == 5
    assert sent["mm_processor_kwargs"] == {"fps": 2}
    assert (sent["temperature"], sent["max_completion_tokens"], sent["seed"], sent["stop"]) == (0.2, 50, 7, ["\n\n"])


def test_streaming_with_usage(env: ChatEnv) -> None:
    url = env.ovs("start_offset_ms=-3000&max_fps=1")
    stream = env.client().chat.completions.create(
        model="qwen",
        messages=video_message(url),
        stream=True,
        stream_options={"include_usage": True},  # type: ignore[arg-type]
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert json.loads(text)["videos"][0]["frames"] == 4
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None and last.usage.total_tokens == 107
    assert _extra(last)["overshoot"]["frames"][0]["frame_indexes"] == [69, 79, 89, 99]
    assert all("overshoot" not in _extra(c) for c in chunks[:-1])
    assert {c.model for c in chunks} == {"qwen"}


def test_streaming_without_usage_puts_overshoot_on_the_last_chunk(env: ChatEnv) -> None:
    stream = env.client().chat.completions.create(
        model="qwen",
        messages=image_message(env.ovs("frame_index=-2")),
        stream=True,  # type: ignore[arg-type]
    )
    chunks = list(stream)
    assert all(c.choices for c in chunks), "no chunk with empty choices unless include_usage"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert _extra(chunks[-1])["overshoot"]["frames"][0]["frame_indexes"] == [98]


async def test_async_client_streaming_and_not(env: ChatEnv) -> None:
    client = env.async_client()
    reply = await client.chat.completions.create(model="qwen", messages=image_message(env.ovs("frame_index=7")))  # type: ignore[arg-type]
    assert _extra(reply)["overshoot"]["frames"][0]["frame_indexes"] == [7]
    stream = await client.chat.completions.create(
        model="qwen",
        messages=video_message(env.ovs("start_frame_index=0&end_frame_index=30&max_fps=1")),  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    assert _extra(chunks[-1])["overshoot"]["frames"][0]["frame_indexes"] == [0, 10, 20]
    await client.close()


def test_all_anchors_of_one_request_see_one_live_edge(env: ChatEnv) -> None:
    messages: list[dict[str, Any]] = [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": env.ovs("frame_index=-1")}},
                {"type": "video_url", "video_url": {"url": env.ovs("start_offset_ms=-1000&max_fps=10")}},
            ],
        }
    ]
    reply = env.client().chat.completions.create(model="qwen", messages=messages)  # type: ignore[arg-type]
    image, video = _extra(reply)["overshoot"]["frames"]
    assert video["frame_indexes"][-1] == image["frame_indexes"][0] == 99


def test_usage_is_counted_when_the_upstream_reports_none(env: ChatEnv) -> None:
    env.fake.behaviour.omit_usage = True
    reply = env.client().chat.completions.create(model="qwen", messages=[{"role": "user", "content": "hello there"}])
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 0
    assert reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    stream = env.client().chat.completions.create(
        model="qwen", messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
    )
    last = list(stream)[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens > 0
    assert "overshoot" in _extra(last)
