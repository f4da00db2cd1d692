"""The model registry drives every backend through the `Backend` lifecycle (start, readiness with a
reason, probe, close) and builds them from one registration table: no switch on concrete types."""

from __future__ import annotations

import typing
from collections.abc import AsyncIterator
from typing import Any

import pytest

from livesight.backends import registry as registry_module
from livesight.backends.base import Chunk
from livesight.backends.registry import BACKENDS, BackendContext, ModelRegistry
from livesight.backends.request import ChatRequest
from livesight.core.clock import FakeClock
from livesight.core.errors import ModelNotReady
from livesight.settings import ModelConfig


class ScriptedBackend:
    """A backend kind the registry has never heard of: only the protocol."""

    probe_before_use = True

    def __init__(self, config: ModelConfig, context: BackendContext) -> None:
        self.config = config
        self.started = 0
        self.probes = 0
        self.closed = False
        self.healthy = False

    def start(self) -> None:
        self.started += 1

    @property
    def ready(self) -> bool:
        return self.healthy

    @property
    def not_ready_reason(self) -> str | None:
        return None if self.healthy else "the scripted engine is warming up"

    async def probe(self) -> bool:
        self.probes += 1
        return self.healthy

    async def complete(self, request: ChatRequest) -> dict[str, Any]:
        return {"choices": []}

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        yield {"choices": []}

    async def aclose(self) -> None:
        self.closed = True


def test_every_configurable_backend_kind_is_registered() -> None:
    kinds = typing.get_args(ModelConfig.model_fields["backend"].annotation)
    assert set(kinds) == set(BACKENDS)


async def test_a_new_backend_kind_is_one_class_and_one_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry_module.BACKENDS, "openai", ScriptedBackend)  # type: ignore[arg-type]
    config = ModelConfig(id="scripted", backend="openai", base_url="http://127.0.0.1:9/v1")
    models = ModelRegistry([config], clock=FakeClock(), builtins=(), probe_ttl_ms=0)
    backend = models.get("scripted").backend
    assert isinstance(backend, ScriptedBackend)

    models.start(preload=True)
    assert backend.started == 1

    with pytest.raises(ModelNotReady) as refused:
        await models.get_ready("scripted")
    assert "the scripted engine is warming up" in refused.value.message
    assert backend.probes == 1

    backend.healthy = True
    assert (await models.get_ready("scripted")).backend is backend
    assert backend.probes == 2

    await models.aclose()
    assert backend.closed


async def test_backends_that_make_themselves_ready_are_not_probed_before_use(monkeypatch: pytest.MonkeyPatch) -> None:
    class LoadsOnFirstUse(ScriptedBackend):
        probe_before_use = False

    monkeypatch.setitem(registry_module.BACKENDS, "openai", LoadsOnFirstUse)  # type: ignore[arg-type]
    config = ModelConfig(id="lazy", backend="openai", base_url="http://127.0.0.1:9/v1")
    models = ModelRegistry([config], clock=FakeClock(), builtins=(), probe_ttl_ms=0)
    entry = await models.get_ready("lazy")
    assert entry.backend.probes == 0  # type: ignore[attr-defined]
    assert entry.status == "unavailable"
    await models.aclose()


async def test_builtin_and_upstream_say_why_they_are_not_ready() -> None:
    models = ModelRegistry([ModelConfig(id="up", base_url="http://127.0.0.1:9/v1")], clock=FakeClock(), probe_ttl_ms=0)
    ocr = models.get("livesight/ocr").backend
    assert not ocr.ready and ocr.not_ready_reason == "it is still loading"
    upstream = models.get("up").backend
    assert upstream.not_ready_reason == "not probed yet"
    await models.aclose()
