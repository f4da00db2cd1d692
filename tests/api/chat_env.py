"""A livesight server wired to a fake vLLM, with a stream holding known frames, for the chat tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai

from livesight.core.clock import FakeClock
from livesight.settings import ModelConfig
from tests.support.fake_upstream import MODEL, FakeUpstream, run_fake_upstream
from tests.support.frames import push_frames
from tests.support.server import LiveServer, run_server

FPS = 10
SECONDS = 10
STAMPS = [i * 1000 // FPS for i in range(FPS * SECONDS)]  # frames 0..99 at t = 0, 100, ..., 9900 ms


@dataclass
class ChatEnv:
    server: LiveServer
    fake: FakeUpstream
    key: str
    stream_id: str

    @property
    def api(self) -> str:
        return self.server.base_url + "/v1"

    def client(self, key: str | None = None, *, timeout: float = 20) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.api, api_key=key or self.key, max_retries=0, timeout=timeout)

    def async_client(self, key: str | None = None) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.api, api_key=key or self.key, max_retries=0, timeout=20)

    def ovs(self, query: str, stream_id: str | None = None) -> str:
        return f"ovs://streams/{stream_id or self.stream_id}?{query}"

    def new_stream(self, key: str | None = None) -> str:
        with self.server.client(key or self.key) as c:
            created = c.post("/v1/streams")
            assert created.status_code == 201, created.text
            return str(created.json()["id"])


def models(base_url: str) -> list[ModelConfig]:
    common: dict[str, Any] = {"base_url": base_url, "upstream_model": MODEL, "max_frames": 200}
    return [
        ModelConfig(id="qwen", profile="vllm", **common),
        ModelConfig(id="qwen-frames", profile="frames", **common),
        ModelConfig(id="qwen-mp4", profile="mp4", **common),
        ModelConfig(id="image-only", profile="frames", video=False, **common),
        ModelConfig(id="small", profile="vllm", **{**common, "max_frames": 3}),
        ModelConfig(id="slow", profile="vllm", timeout_s=0.5, **{k: v for k, v in common.items()}),
        ModelConfig(id="nowhere", base_url="http://127.0.0.1:9/v1", profile="vllm"),
    ]


@contextlib.contextmanager
def chat_env(tmp_path: Path, clock: FakeClock, *, frames: bool = True, **overrides: Any) -> Iterator[ChatEnv]:
    with run_fake_upstream() as fake:
        overrides.setdefault("builtin_models", [])
        with run_server(tmp_path, clock=clock, models=models(fake.base_url), **overrides) as server:
            env = ChatEnv(server, fake, server.new_key(), "")
            env.stream_id = env.new_stream()
            if frames:
                push_frames(server, env.stream_id, STAMPS)
            yield env


def image_message(url: str, text: str = "What does it show?") -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}]}
    ]


def video_message(url: str, text: str = "What happened?") -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": [{"type": "video_url", "video_url": {"url": url}}, {"type": "text", "text": text}]}
    ]
