"""The model registry: each model id maps to a backend and its capabilities.

Built-in models (`livesight/ocr`) are present without configuration; `[[models]]` entries add to
them (an entry with a built-in's id replaces its settings). `GET /models` reports a model `ready`
only when its backend answered a health probe: upstreams are probed with `GET {base_url}/models`
(bounded, results reused for `probe_ttl_ms`; a model with `replicas` is ready while one of them answers,
`replicas.py`), built-ins are ready once loaded.

A third source, `discover` (local engines found by themselves, `discovery.py`), is asked at `start()`,
then every `discover_ttl_ms` in the background and whenever `GET /models` finds its answer older than
that: its models are added as entries marked `discovered` and removed when the next answer lacks them.
Built-in and configured ids always win over a discovered one with the same id.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Literal

from livesight.backends.base import Backend, Preparing
from livesight.backends.builtin import OCR_MODEL_ID, AnswerModel, OcrBackend, builtin_config, default_ocr_factory
from livesight.backends.inflight import InflightBudget
from livesight.backends.replicas import ReplicatedBackend
from livesight.backends.upstream import OpenAICompatBackend
from livesight.backends.vlm.backend import VlmBackend
from livesight.backends.vlm.catalog import READY, ready_config
from livesight.backends.weights import WeightStore
from livesight.core.clock import Clock
from livesight.core.errors import ModelNotReady, ModelUnavailable
from livesight.settings import ModelConfig


@dataclass(frozen=True, slots=True)
class BackendContext:
    """What a backend factory may use to build a backend (shared by every model)."""

    clock: Clock
    executor: Executor | None
    inflight: InflightBudget
    ocr_factory: Callable[[ModelConfig], AnswerModel]
    weights: WeightStore | None = None  # where in-process models' weights are pulled to
    auto_pull: bool = True
    threads: int | None = None  # torch threads of in-process models


BackendFactory = Callable[[ModelConfig, BackendContext], Backend]
Discover = Callable[[], Awaitable[list[ModelConfig]]]
"""Model configurations found at run time (local engines): the registry's third source."""

log = logging.getLogger("livesight.models")


def _builtin(config: ModelConfig, context: BackendContext) -> Backend:
    if config.id != OCR_MODEL_ID:
        raise ValueError(f"model {config.id!r}: no built-in model has this id (built-in: {OCR_MODEL_ID})")
    return OcrBackend(config, clock=context.clock, factory=context.ocr_factory)


def _openai(config: ModelConfig, context: BackendContext) -> Backend:
    if config.replicas:
        return ReplicatedBackend(config, clock=context.clock, executor=context.executor, inflight=context.inflight)
    return OpenAICompatBackend(config, executor=context.executor, inflight=context.inflight)


def _transformers(config: ModelConfig, context: BackendContext) -> Backend:
    return VlmBackend(
        config, clock=context.clock, weights=context.weights, auto_pull=context.auto_pull, threads=context.threads
    )


BACKENDS: dict[Literal["builtin", "openai", "transformers"], BackendFactory] = {
    "builtin": _builtin,
    "openai": _openai,
    "transformers": _transformers,
}
"""`ModelConfig.backend` → how to build it: the one place a kind of backend is registered."""


@dataclass(slots=True)
class ModelEntry:
    config: ModelConfig
    backend: Backend
    created: int
    probed_at_ms: int | None = None
    probing: asyncio.Future[bool] | None = None
    discovered: bool = False

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def status(self) -> str:
        """`ready` or `unavailable`; an in-process model also `not downloaded`, `downloading`, `downloaded`,
        `loading`."""
        if self.backend.ready:
            return "ready"
        if isinstance(self.backend, Preparing) and self.backend.state != "ready":
            return self.backend.state  # not downloaded, downloading, downloaded (loads on first use), loading
        return "unavailable"


class ModelRegistry:
    def __init__(
        self,
        configs: Iterable[ModelConfig],
        *,
        clock: Clock,
        builtins: Iterable[str] = (OCR_MODEL_ID,),
        executor: Executor | None = None,
        probe_ttl_ms: int = 5_000,
        ocr_factory: Callable[[ModelConfig], AnswerModel] = default_ocr_factory,
        inflight: InflightBudget | None = None,
        discover: Discover | None = None,
        discover_ttl_ms: int = 30_000,
        weights: WeightStore | None = None,
        auto_pull: bool = True,
        vlm_threads: int | None = None,
    ) -> None:
        self._clock = clock
        self._probe_ttl_ms = probe_ttl_ms
        self._discover = discover
        self._discover_ttl_ms = discover_ttl_ms
        self._discovered_at_ms: int | None = None
        self._discovering: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Future[None]] = set()  # closing backends of discovered models that went away
        self._forever: asyncio.Future[None] | None = None
        created = clock.now_ms() // 1000
        configured = list(configs)
        seen: set[str] = set()
        for config in configured:
            if config.id in seen:
                raise ValueError(f"model id {config.id!r} is configured twice")
            seen.add(config.id)
        # one in-flight budget for every upstream model
        context = self._context = BackendContext(
            clock, executor, inflight or InflightBudget(), ocr_factory, weights, auto_pull, vlm_threads
        )
        ready = [ready_config(b) if b in READY else builtin_config(b) for b in builtins if b not in seen]
        all_configs = ready + configured
        self._entries: dict[str, ModelEntry] = {}
        for config in all_configs:
            self._entries[config.id] = ModelEntry(config, BACKENDS[config.backend](config, context), created)
        self._fixed = frozenset(self._entries)  # built-in and configured ids: never replaced by a discovered one

    def entries(self) -> list[ModelEntry]:
        return list(self._entries.values())

    def get(self, model_id: str) -> ModelEntry:
        """The model a chat request names (verbatim, case-sensitive), or 404 `model_unavailable`."""
        entry = self._entries.get(model_id)
        if entry is None:
            known = ", ".join(sorted(self._entries)) or "none"
            raise ModelUnavailable(f"model {model_id!r} is not served here (models: {known}); see GET /v1/models")
        return entry

    async def find(self, model_id: str) -> ModelEntry:
        """`get`, but an id not known yet first asks the discovery source again (when its answer is older
        than the TTL), so a model pulled into a local engine is served without waiting for the refresh."""
        if model_id not in self._entries and self._discover is not None:
            await self.discover()
        return self.get(model_id)

    async def get_ready(self, model_id: str) -> ModelEntry:
        """The model for a chat request (CONTRACT §6): 404 `model_unavailable` when the id is unknown,
        503 `model_not_ready` (with Retry-After: when the next probe may answer differently) when its
        upstream failed its (fresh) health probe. Built-in models load on first use instead."""
        entry = self.get(model_id)
        if not entry.backend.probe_before_use:
            return entry
        await self._probe(entry)
        if not entry.backend.ready:
            reason = entry.backend.not_ready_reason or "it is not ready"
            raise ModelNotReady(
                f"model {model_id!r} is configured but not ready: {reason}; retry later, see GET /v1/models",
                retry_after_s=max(1, math.ceil(self._probe_ttl_ms / 1000)),
            )
        return entry

    async def _probe(self, entry: ModelEntry) -> None:
        """Probe once per TTL; concurrent callers share one probe (even if the first caller goes away)."""
        if entry.probing is None:
            if entry.probed_at_ms is not None and self._clock.now_ms() - entry.probed_at_ms < self._probe_ttl_ms:
                return
            entry.probing = asyncio.ensure_future(entry.backend.probe())
            entry.probing.add_done_callback(lambda _: self._probed(entry))
        await asyncio.shield(entry.probing)

    def _probed(self, entry: ModelEntry) -> None:
        entry.probed_at_ms = self._clock.now_ms()
        entry.probing = None

    def start(self, *, preload: bool) -> None:
        """Begin what makes each backend ready (built-in models load) and the background discovery of
        local engines; call on the event loop."""
        if preload:
            for entry in self._entries.values():
                entry.backend.start()
        if self._discover is not None and self._forever is None:
            self._forever = asyncio.ensure_future(self._discover_forever())

    async def discover(self) -> None:
        """Ask the discovery source again when its last answer is older than the TTL; concurrent callers
        share one question. Its models become entries; discovered entries it no longer lists go away."""
        if self._discover is None:
            return
        if self._discovering is None:
            at = self._discovered_at_ms
            if at is not None and self._clock.now_ms() - at < self._discover_ttl_ms:
                return
            self._discovering = asyncio.ensure_future(self._rediscover(self._discover))
        await asyncio.shield(self._discovering)

    async def _rediscover(self, discover: Discover) -> None:
        try:
            found = await discover()
        except Exception:
            log.exception("discovering local models failed; the list stays as it was")
            return
        finally:
            self._discovered_at_ms = self._clock.now_ms()
            self._discovering = None
        self._merge(found)

    def _merge(self, found: list[ModelConfig]) -> None:
        wanted = {c.id: c for c in found if c.id not in self._fixed}
        for model_id, entry in list(self._entries.items()):
            if entry.discovered and wanted.get(model_id) != entry.config:
                del self._entries[model_id]
                self._keep(asyncio.ensure_future(entry.backend.aclose()))
                log.info("model %s is gone from its local engine", model_id)
        created = self._clock.now_ms() // 1000
        for model_id, config in wanted.items():
            if model_id not in self._entries:
                backend = BACKENDS[config.backend](config, self._context)
                self._entries[model_id] = ModelEntry(config, backend, created, discovered=True)
                log.info("found model %s on a local engine (%s)", model_id, config.base_url)

    async def _discover_forever(self) -> None:
        while True:
            await self.discover()
            await asyncio.sleep(max(1.0, self._discover_ttl_ms / 1000))

    def _keep(self, task: asyncio.Future[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def refresh(self) -> list[ModelEntry]:
        """Discover again and probe every backend whose last probe is older than the TTLs; the entries."""
        await self.discover()
        await asyncio.gather(*(self._probe(e) for e in self._entries.values()), return_exceptions=True)
        return self.entries()

    async def aclose(self) -> None:
        for task in (self._forever, self._discovering):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (self._forever, *self._tasks) if t is not None), return_exceptions=True)
        await asyncio.gather(*(e.backend.aclose() for e in self._entries.values()), return_exceptions=True)
