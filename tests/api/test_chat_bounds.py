"""Bounded work per chat request (issue 8 item 2): the request frame budget, per-model `max_images`, and
the in-flight byte budget for upstream bodies, through the openai SDK against a real server and fake vLLM."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
import simplejpeg

from livesight.core.clock import FakeClock
from livesight.settings import ModelConfig
from tests.support.fake_upstream import MODEL, FakeUpstream, run_fake_upstream
from tests.support.frames import push_frames
from tests.support.polling import wait_for
from tests.support.server import LiveServer, run_server

FRAMES = 12


@contextlib.contextmanager
def bounded_env(
    tmp_path: Path, clock: FakeClock, *, jpeg: Any = None, **settings: Any
) -> Iterator[tuple[LiveServer, FakeUpstream, openai.OpenAI, str]]:
    with run_fake_upstream() as fake:
        common: dict[str, Any] = {"base_url": fake.base_url, "upstream_model": MODEL, "max_frames": 200}
        models = [
            ModelConfig(id="qwen", profile="vllm", **common),
            ModelConfig(id="two-images", profile="frames", max_images=2, **common),
            ModelConfig(id="two-images-vllm", profile="vllm", max_images=2, **common),
        ]
        with run_server(tmp_path, clock=clock, models=models, builtin_models=[], **settings) as server:
            key = server.new_key()
            with server.client(key) as c:
                stream_id = c.post("/v1/streams").json()["id"]
            push_frames(server, stream_id, [i * 100 for i in range(FRAMES)], jpeg=jpeg)
            client = openai.OpenAI(base_url=server.base_url + "/v1", api_key=key, max_retries=0, timeout=60)
            yield server, fake, client, stream_id


def images(stream_id: str, count: int, index: int | None = -1) -> list[dict[str, Any]]:
    """`count` image parts: all of frame `index`, or (index None) the newest, the one before, ... in turn."""
    return [
        {
            "type": "image_url",
            "image_url": {
                "url": f"ovs://streams/{stream_id}?frame_index={-1 - i % FRAMES if index is None else index}"
            },
        }
        for i in range(count)
    ]


def segment(stream_id: str, max_fps: int = 10) -> dict[str, Any]:
    return {
        "type": "video_url",
        "video_url": {"url": f"ovs://streams/{stream_id}?start_frame_index=0&max_fps={max_fps}"},
    }


def ask(client: openai.OpenAI, model: str, parts: list[dict[str, Any]]) -> Any:
    content = [{"type": "text", "text": "What changed?"}, *parts]
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}])  # type: ignore[misc,list-item]


def refused(client: openai.OpenAI, model: str, parts: list[dict[str, Any]]) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as err:
        ask(client, model, parts)
    return err.value


def error_of(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.response.json()
    error: dict[str, Any] = body["detail"]["error"]
    return error


def test_the_request_frame_budget_counts_every_part(tmp_path: Path, clock: FakeClock) -> None:
    with bounded_env(tmp_path, clock) as (_, fake, client, sid):
        exc = refused(client, "qwen", images(sid, 257))  # default: max_segment_frames = 256
        assert exc.status_code == 400
        error = error_of(exc)
        assert (error["type"], error["code"]) == ("validation_error", "too_many_frames")
        assert "257 frames" in error["message"] and "256" in error["message"]
        assert "max_request_frames" in error["message"]
        # a segment of 12 frames plus 245 images is 257 frames too; one frame less passes
        assert error_of(refused(client, "qwen", [segment(sid), *images(sid, 245)]))["code"] == "too_many_frames"
        assert not fake.requests
        reply = ask(client, "qwen", [segment(sid), *images(sid, 244)])
        seen = json.loads(reply.choices[0].message.content or "")
        assert len(seen["images"]) == 244 and seen["videos"][0]["frames"] == FRAMES


def test_max_request_frames_is_its_own_setting(tmp_path: Path, clock: FakeClock) -> None:
    with bounded_env(tmp_path, clock, max_request_frames=5) as (_, _fake, client, sid):
        error = error_of(refused(client, "qwen", images(sid, 6)))
        assert error["code"] == "too_many_frames" and "6 frames" in error["message"] and "5" in error["message"]
        assert error_of(refused(client, "qwen", [segment(sid)]))["code"] == "too_many_frames"  # 12 frames
        assert len(json.loads(ask(client, "qwen", images(sid, 5)).choices[0].message.content or "")["images"]) == 5


def test_a_model_max_images(tmp_path: Path, clock: FakeClock) -> None:
    with bounded_env(tmp_path, clock) as (_, fake, client, sid):
        exc = refused(client, "two-images", images(sid, 3))
        error = error_of(exc)
        assert exc.status_code == 400
        assert (error["type"], error["code"]) == ("validation_error", "too_many_images")
        for words in ("two-images", "3 images", "at most 2", "max_images"):
            assert words in error["message"]
        # in the frames profile each frame of a segment is an image part; in vllm a segment is one video
        assert error_of(refused(client, "two-images", [segment(sid)]))["code"] == "too_many_images"
        assert not fake.requests
        ask(client, "two-images", images(sid, 2))
        seen = json.loads(ask(client, "two-images-vllm", [segment(sid), *images(sid, 2)]).choices[0].message.content)
        assert len(seen["images"]) == 2 and len(seen["videos"]) == 1


_RNG = np.random.default_rng(1)


def noise_jpeg(_: int) -> bytes:
    """640×360 noise: about 330 KB of JPEG, 440 KB of base64, a different frame every call."""
    return bytes(simplejpeg.encode_jpeg(_RNG.integers(0, 255, (360, 640, 3), dtype=np.uint8), quality=80))


def test_the_in_flight_body_budget(tmp_path: Path, clock: FakeClock) -> None:
    settings = {"upstream_inflight_mb": 2, "upstream_inflight_wait_s": 0.3}
    with bounded_env(tmp_path, clock, jpeg=noise_jpeg, **settings) as (server, fake, client, sid):
        budget = server.components.models.get("qwen").backend.inflight
        # one request alone larger than the whole budget: waiting cannot help
        exc = refused(client, "qwen", images(sid, FRAMES, index=None))  # 12 distinct frames, ~5 MB
        assert exc.status_code == 413
        error = error_of(exc)
        assert error["code"] == "upstream_body_too_large" and "upstream_inflight_mb=2" in error["message"]

        # a slow upstream holds one body (1 frame sent 100 times: ~0.4 MB held, ~44 MB sent) ...
        fake.behaviour.body_delay_s = 3.0
        held: list[Any] = []
        holder = threading.Thread(target=lambda: held.append(ask(client, "qwen", images(sid, 100, index=0))))
        holder.start()
        try:
            wait_for(lambda: budget.used > 0, timeout=10, what="the slow request to hold its body")
            # ... so a request needing 4 distinct frames (~1.8 MB) more waits, then gets 503 with Retry-After
            exc = refused(client, "qwen", images(sid, 4, index=None))
        finally:
            holder.join(30)
        assert exc.status_code == 503 and exc.response.headers["retry-after"] == "1"
        error = error_of(exc)
        assert error["code"] == "upstream_busy" and "upstream_inflight_mb=2" in error["message"]
        assert len(json.loads(held[0].choices[0].message.content)["images"]) == 100
        # once the held body was sent the budget is free again
        wait_for(lambda: budget.used == 0, timeout=10, what="the budget to be released")
        fake.behaviour.body_delay_s = 0
        assert (
            len(json.loads(ask(client, "qwen", images(sid, 4, index=None)).choices[0].message.content)["images"]) == 4
        )
