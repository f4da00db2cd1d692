"""Local engines found by themselves (backends/discovery.py) against fake Ollama / llama-server on 127.0.0.1,
and the registry's third source: discovered models merged at refresh, configured ids winning."""

from __future__ import annotations

import socket

from livesight.backends.discovery import MAX_FRAMES, LocalEngines
from livesight.backends.registry import ModelRegistry
from livesight.core.clock import FakeClock
from livesight.settings import ModelConfig, load_settings
from tests.support.fake_engines import run_fake_llama_server, run_fake_ollama


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_ollama_vision_models_are_found_and_the_others_skipped() -> None:
    capabilities: dict[str, list[str] | None] = {
        "qwen2.5vl:3b": ["completion", "vision"],
        "llama3.2:1b": ["completion", "tools"],
        "llava:7b": None,  # an Ollama from before `capabilities`: its projector says it sees
        "phi3:mini": None,
    }
    with run_fake_ollama(capabilities=capabilities, projector={"llava:7b"}) as ollama:
        found = await LocalEngines(ollama_url=ollama.url, llamacpp_url=None).discover()
    assert [c.id for c in found] == ["ollama/qwen2.5vl:3b", "ollama/llava:7b"]
    qwen = found[0]
    assert (qwen.backend, qwen.base_url, qwen.upstream_model, qwen.profile) == (
        "openai",
        f"{ollama.url}/v1",
        "qwen2.5vl:3b",
        "frames",
    )
    assert (qwen.image, qwen.video, qwen.max_frames, qwen.owned_by) == (True, True, MAX_FRAMES, "ollama")


async def test_ollama_is_asked_about_a_model_again_only_when_its_digest_changes() -> None:
    with run_fake_ollama(capabilities={"qwen2.5vl:3b": ["vision"], "llama3.2:1b": ["completion"]}) as ollama:
        engines = LocalEngines(ollama_url=ollama.url, llamacpp_url=None)
        first = await engines.discover()
        second = await engines.discover()
        shows = [a for a in ollama.asked if a.startswith("/api/show")]
        assert shows == ["/api/show qwen2.5vl:3b", "/api/show llama3.2:1b"]
        ollama.digests["qwen2.5vl:3b"] = "1" * 64  # re-pulled: a new digest
        await engines.discover()
    assert [c.id for c in first] == [c.id for c in second] == ["ollama/qwen2.5vl:3b"]
    assert [a for a in ollama.asked if a.startswith("/api/show")][2:] == ["/api/show qwen2.5vl:3b"]


async def test_llama_server_is_listed_only_when_it_says_it_has_vision() -> None:
    with run_fake_llama_server() as server:
        [found] = await LocalEngines(ollama_url=None, llamacpp_url=server.url).discover()
    assert (found.id, found.upstream_model) == ("llamacpp/SmolVLM-500M-Instruct-Q8_0.gguf", server.model)
    assert (found.base_url, found.profile, found.owned_by) == (f"{server.url}/v1", "frames", "llama.cpp")
    for vision in (False, None):  # text-only, or a server whose /props does not say (not llama.cpp with vision)
        with run_fake_llama_server(vision=vision) as server:
            assert await LocalEngines(ollama_url=None, llamacpp_url=server.url).discover() == []
    with run_fake_ollama(capabilities={"x": ["vision"]}) as other:  # port 8080 may be anything: no /props
        assert await LocalEngines(ollama_url=None, llamacpp_url=other.url).discover() == []


async def test_engines_that_are_not_there_contribute_nothing() -> None:
    engines = LocalEngines(ollama_url=closed_port_url(), llamacpp_url=closed_port_url())
    assert await engines.discover() == []


def test_opt_out_and_defaults() -> None:
    defaults = LocalEngines.from_settings(load_settings(None))
    assert defaults == LocalEngines("http://127.0.0.1:11434", "http://127.0.0.1:8080")
    assert LocalEngines.from_settings(load_settings(None, discover_local_engines=False)) is None
    assert LocalEngines.from_settings(load_settings(None, ollama_url=None, llamacpp_url=None)) is None


def _config(model_id: str, base_url: str = "http://127.0.0.1:9/v1") -> ModelConfig:
    return ModelConfig(id=model_id, base_url=base_url, owned_by="ollama")


async def test_the_registry_merges_discovered_models_and_configured_ids_win() -> None:
    clock = FakeClock()
    answers = [[_config("ollama/a"), _config("ollama/mine")]]

    async def discover() -> list[ModelConfig]:
        return answers[-1]

    configured = ModelConfig(id="ollama/mine", base_url="http://127.0.0.1:10/v1", owned_by="me")
    registry = ModelRegistry([configured], clock=clock, builtins=(), discover=discover, discover_ttl_ms=30_000)
    await registry.refresh()
    entries = {e.id: e for e in registry.entries()}
    assert set(entries) == {"ollama/a", "ollama/mine"}
    assert entries["ollama/mine"].config.owned_by == "me" and not entries["ollama/mine"].discovered
    assert entries["ollama/a"].discovered
    a_backend = entries["ollama/a"].backend

    answers.append([_config("ollama/b")])  # "a" went away, "b" arrived: seen only after the TTL
    await registry.refresh()
    assert {e.id for e in registry.entries()} == {"ollama/a", "ollama/mine"}
    clock.advance(30_000)
    await registry.refresh()
    assert {e.id for e in registry.entries()} == {"ollama/b", "ollama/mine"}
    assert a_backend not in [e.backend for e in registry.entries()]
    await registry.aclose()


async def test_a_failing_discovery_keeps_the_list() -> None:
    clock = FakeClock()
    calls = 0

    async def discover() -> list[ModelConfig]:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise RuntimeError("a bug in a discovery source")
        return [_config("ollama/a")]

    registry = ModelRegistry([], clock=clock, builtins=(), discover=discover, discover_ttl_ms=0)
    await registry.refresh()
    await registry.refresh()
    assert calls == 2
    assert [e.id for e in registry.entries()] == ["ollama/a"]
    await registry.aclose()
