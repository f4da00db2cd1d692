"""A local Ollama's vision models in GET /v1/models without configuration, and answering through the openai
SDK about an ovs:// frame and segment (frames profile: data-URL images); gone when Ollama goes away."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from livesight.core.clock import FakeClock
from livesight.settings import ModelConfig
from tests.api.chat_env import image_message, video_message
from tests.support.fake_engines import FakeOllama, run_fake_llama_server, run_fake_ollama
from tests.support.frames import push_frames
from tests.support.server import LiveServer, run_server

CAPABILITIES: dict[str, list[str] | None] = {
    "qwen2.5vl:3b": ["completion", "vision"],
    "llama3.2:1b": ["completion", "tools"],
}
TTL_S = 30


@contextlib.contextmanager
def with_ollama(tmp_path: Path, clock: FakeClock, **overrides: Any) -> Iterator[tuple[LiveServer, FakeOllama]]:
    with run_fake_ollama(capabilities=dict(CAPABILITIES)) as ollama:
        overrides.setdefault("discover_local_engines", True)
        overrides.setdefault("llamacpp_url", None)
        with run_server(
            tmp_path, clock=clock, builtin_models=[], ollama_url=ollama.url, discovery_ttl_s=TTL_S, **overrides
        ) as server:
            yield server, ollama


def listed(server: LiveServer) -> dict[str, dict[str, Any]]:
    with server.client() as c:
        response = c.get("/v1/models")
    assert response.status_code == 200
    return {m["id"]: m for m in response.json()["data"]}


def sdk(server: LiveServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key=key, max_retries=0, timeout=20)


def test_ollama_vision_models_are_listed_and_answer_about_a_frame(tmp_path: Path, clock: FakeClock) -> None:
    with with_ollama(tmp_path, clock) as (server, ollama):
        key = server.new_key()
        models = listed(server)
        assert set(models) == {"ollama/qwen2.5vl:3b"}  # the text-only model is skipped
        card = models["ollama/qwen2.5vl:3b"]
        assert (card["status"], card["owned_by"], card["backend"]) == ("ready", "ollama", "openai")
        assert card["capabilities"] == {"image": True, "video": True, "max_frames": 8}
        assert [m.id for m in sdk(server, key).models.list()] == ["ollama/qwen2.5vl:3b"]

        with server.client(key) as c:
            stream_id = c.post("/v1/streams").json()["id"]
        push_frames(server, stream_id, [0, 500, 1000, 1500])
        reply = sdk(server, key).chat.completions.create(
            model="ollama/qwen2.5vl:3b",
            messages=image_message(f"ovs://streams/{stream_id}?frame_index=-1"),  # type: ignore[arg-type]
        )
        assert reply.model == "ollama/qwen2.5vl:3b"
        sent = ollama.upstream.requests[-1]
        assert sent["model"] == "qwen2.5vl:3b"
        assert ollama.upstream.summaries[-1]["images"] == [[640, 360]]  # a data-URL JPEG, decoded

        reply = sdk(server, key).chat.completions.create(
            model="ollama/qwen2.5vl:3b",
            messages=video_message(f"ovs://streams/{stream_id}?start_timestamp_ms=0&end_timestamp_ms=1500&max_fps=2"),  # type: ignore[arg-type]
        )
        summary = ollama.upstream.summaries[-1]
        assert summary["videos"] == [] and len(summary["images"]) == 3  # frame list as several images
        stamps = [t.split()[0] for t in summary["texts"] if t.startswith("t=+")]
        assert stamps == ["t=+0.0s", "t=+0.5s", "t=+1.0s"]  # each frame after its stream time


def test_discovered_models_go_when_the_engine_goes(tmp_path: Path, clock: FakeClock) -> None:
    with contextlib.ExitStack() as outlives_ollama:
        with run_fake_ollama(capabilities=dict(CAPABILITIES)) as ollama:
            server = outlives_ollama.enter_context(
                run_server(
                    tmp_path,
                    clock=clock,
                    builtin_models=[],
                    discover_local_engines=True,
                    ollama_url=ollama.url,
                    llamacpp_url=None,
                    discovery_ttl_s=TTL_S,
                )
            )
            assert set(listed(server)) == {"ollama/qwen2.5vl:3b"}
            ollama.capabilities["llava:7b"] = ["completion", "vision"]  # `ollama pull llava` meanwhile
            assert set(listed(server)) == {"ollama/qwen2.5vl:3b"}  # the answer is reused for the TTL
            clock.advance(TTL_S * 1000)
            # a request for a model not known yet asks the engine again before it is refused
            reply = sdk(server, server.new_key()).chat.completions.create(
                model="ollama/llava:7b", messages=[{"role": "user", "content": "hi"}]
            )
            assert reply.model == "ollama/llava:7b"
            assert set(listed(server)) == {"ollama/qwen2.5vl:3b", "ollama/llava:7b"}
        with pytest.raises(httpx.ConnectError):  # the fake Ollama has stopped; livesight has not
            httpx.get(ollama.url + "/api/tags")
        clock.advance(TTL_S * 1000)
        assert listed(server) == {}


def test_a_llama_server_with_vision_is_listed_beside_ollama_and_streams(tmp_path: Path, clock: FakeClock) -> None:
    with run_fake_llama_server() as llama, with_ollama(tmp_path, clock, llamacpp_url=llama.url) as (server, _):
        models = listed(server)
        assert set(models) == {"ollama/qwen2.5vl:3b", "llamacpp/SmolVLM-500M-Instruct-Q8_0.gguf"}
        assert models["llamacpp/SmolVLM-500M-Instruct-Q8_0.gguf"]["owned_by"] == "llama.cpp"
        key = server.new_key()
        with server.client(key) as c:
            stream_id = c.post("/v1/streams").json()["id"]
        push_frames(server, stream_id, [0, 500])
        chunks = sdk(server, key).chat.completions.create(
            model="llamacpp/SmolVLM-500M-Instruct-Q8_0.gguf",
            messages=image_message(f"ovs://streams/{stream_id}?frame_index=-1"),  # type: ignore[arg-type]
            stream=True,
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert '"images":[[640,360]]' in text
        assert llama.upstream.requests[-1]["model"] == llama.model  # the id llama-server listed, verbatim


def test_a_configured_model_wins_over_a_discovered_one(tmp_path: Path, clock: FakeClock) -> None:
    mine = ModelConfig(id="ollama/qwen2.5vl:3b", base_url="http://127.0.0.1:9/v1", max_frames=3, owned_by="me")
    with with_ollama(tmp_path, clock, models=[mine]) as (server, _):
        card = listed(server)["ollama/qwen2.5vl:3b"]
        assert (card["owned_by"], card["capabilities"]["max_frames"]) == ("me", 3)


def test_opt_out_asks_no_engine(tmp_path: Path, clock: FakeClock) -> None:
    with with_ollama(tmp_path, clock, discover_local_engines=False) as (server, ollama):
        assert listed(server) == {}
    assert ollama.asked == []
