"""Backend `openai` with `replicas`: one model served by several upstreams (docs/scale-out.md "Models across GPUs").

Which replica answers a request:

- A request that references a stream goes to the replica with the highest rendezvous (highest-random-weight)
  score `blake2b(replica name, stream id)` among the replicas that are up, so every request about one stream
  lands on the same engine and finds its frames in that engine's prefix and encoder caches (each frame also
  carries a stable `uuid`, `render.media_uuid`). A request spanning several streams is hashed on the first
  stream it references. The assignment is a pure function of the stream id and the replica names: every
  livesight node computes the same one, and a replica that goes away moves only its own streams.
- A request without a stream goes to the least-loaded replica that is up (requests in flight from this
  node), ties broken by the same hash over the request's text (equal prompts share an engine's cache).

A replica that fails a request with a connection error or a 5xx, or fails its health probe, is marked down
for `replica_down_s`: its streams move to their next replica by the same hash meanwhile, and come back when
the mark expires (or a request it answers clears it). The failed request itself is tried on the next
replica when nothing of the answer was sent yet: after a connection error on every replica in turn, after a
5xx once (the engine saw that request, and a request that breaks engines must not take them all down). A
timeout is not retried (the request's time is spent); a replica that stops answering is caught by its probe.
When every replica is down, requests still go to them in hash order rather than being refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Literal

import httpx

from livesight.backends.base import Chunk, ReplicaView
from livesight.backends.inflight import InflightBudget
from livesight.backends.request import ChatRequest, message_text
from livesight.backends.upstream import OpenAICompatBackend
from livesight.core.clock import Clock
from livesight.core.errors import UpstreamError, UpstreamHTTPError, UpstreamRequestFailed
from livesight.core.jsontypes import JsonObject
from livesight.settings import ModelConfig, ReplicaConfig

log = logging.getLogger("livesight.models")

Failure = Literal["connection", "5xx"]


def hrw_score(replica: str, key: str) -> int:
    """The rendezvous weight of `replica` for `key` (64 bits of blake2b: stable across processes)."""
    digest = hashlib.blake2b(f"{replica}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rank(key: str, names: Sequence[str]) -> list[str]:
    """`names` by descending rendezvous weight for `key`: the first is its replica, the next its fallback."""
    return sorted(names, key=lambda name: (-hrw_score(name, key), name))


def stream_key(request: ChatRequest) -> str | None:
    """The stream a request is routed by: the first stream it references (None: it references none)."""
    return next((item.stream_id for item in request.media() if item.stream_id is not None), None)


def text_key(request: ChatRequest) -> str:
    """A hash of a request's roles and texts: the tie-break of requests without a stream."""
    h = hashlib.blake2b(digest_size=16)
    for message in request.messages:
        h.update(message.role.encode() + b"\x00" + message_text(message).encode() + b"\x01")
    return h.hexdigest()


def failure_kind(exc: UpstreamError) -> Failure | None:
    """Whether an error says the replica is failing (not the request): a connection error or a 5xx."""
    if isinstance(exc, UpstreamHTTPError):
        return "5xx" if exc.upstream_status is not None and exc.upstream_status >= 500 else None
    if isinstance(exc, UpstreamRequestFailed) and exc.upstream_status is None:
        return "connection"
    return None


@dataclass(slots=True)
class _Replica:
    name: str
    backend: OpenAICompatBackend
    down_until_ms: int | None = None
    last_error: str | None = None
    in_flight: int = 0

    def down(self, now_ms: int) -> bool:
        return self.down_until_ms is not None and now_ms < self.down_until_ms


def replica_config(config: ModelConfig, replica: ReplicaConfig) -> ModelConfig:
    """The model's settings with one replica's URL (and key, when the replica names its own)."""
    update: dict[str, object] = {"base_url": replica.base_url, "replicas": []}
    if replica.api_key or replica.api_key_env:
        update |= {"api_key": replica.api_key, "api_key_env": replica.api_key_env}
    return config.model_copy(update=update)


class ReplicatedBackend:
    def __init__(
        self,
        config: ModelConfig,
        *,
        clock: Clock,
        executor: Executor | None = None,
        inflight: InflightBudget | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not config.replicas:
            raise ValueError(f"model {config.id!r}: a replicated backend needs replicas")
        self.config = config
        self._clock = clock
        self._down_ms = max(1, round(config.replica_down_s * 1000))
        budget = inflight or InflightBudget()
        self._replicas = [
            _Replica(
                r.label,
                OpenAICompatBackend(replica_config(config, r), executor=executor, transport=transport, inflight=budget),
            )
            for r in config.replicas
        ]
        self._by_name = {r.name: r for r in self._replicas}
        self._ready = False
        self._reason: str | None = "not probed yet"

    probe_before_use = True

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def not_ready_reason(self) -> str | None:
        return None if self._ready else self._reason

    def start(self) -> None:
        """Nothing to prepare: readiness is the health probe of each replica."""

    async def probe(self) -> bool:
        """Probe every replica; ready when at least one answers. A replica that fails is marked down."""
        results = await asyncio.gather(*(r.backend.probe() for r in self._replicas))
        for replica, ok in zip(self._replicas, results, strict=True):
            if not ok:
                self._mark_down(replica, "failed its health probe", replica.backend.probe_error or "")
        self._ready = any(results)
        self._reason = None
        if not self._ready:
            reasons = "; ".join(f"{r.name}: {r.backend.probe_error}" for r in self._replicas)
            self._reason = f"no replica answers its health probe ({reasons})"
        return self._ready

    def replica_views(self) -> list[ReplicaView]:
        now = self._clock.now_ms()
        return [
            ReplicaView(
                name=r.name,
                state="down" if r.down(now) else "up",
                in_flight=r.in_flight,
                down_for_s=(r.down_until_ms - now) / 1000 if r.down_until_ms is not None and r.down(now) else None,
                last_error=r.last_error,
            )
            for r in self._replicas
        ]

    def order(self, request: ChatRequest) -> list[str]:
        """The replicas this request would try, in order: the ones up first, each group by its ranking."""
        now = self._clock.now_ms()
        names = [r.name for r in self._replicas]
        key = stream_key(request)
        if key is not None:
            ranked = rank(key, names)
        else:
            tie = text_key(request)
            ranked = sorted(names, key=lambda n: (self._by_name[n].in_flight, -hrw_score(n, tie), n))
        up = [n for n in ranked if not self._by_name[n].down(now)]
        return up + [n for n in ranked if self._by_name[n].down(now)]

    def _mark_down(self, replica: _Replica, reason: str, detail: str) -> None:
        """`reason` is shown by GET /models (no address in it); `detail` goes to the log only."""
        was_down = replica.down(self._clock.now_ms())
        replica.down_until_ms = self._clock.now_ms() + self._down_ms
        replica.last_error = reason
        if not was_down:
            log.warning(
                "model %s: replica %s is marked down for %g s (%s: %s); its streams move to the next replica",
                self.config.id,
                replica.name,
                self._down_ms / 1000,
                reason,
                detail,
            )

    def _answered(self, replica: _Replica) -> None:
        if replica.down_until_ms is not None:
            log.info("model %s: replica %s answers again", self.config.id, replica.name)
        replica.down_until_ms = None

    def _failed(self, replica: _Replica, exc: UpstreamError, *, retried_5xx: bool, last: bool) -> bool:
        """Record a failed attempt; True when the request may go on to the next replica."""
        kind = failure_kind(exc)
        if kind is None:
            return False
        self._mark_down(
            replica, "connection error" if kind == "connection" else f"HTTP {exc.upstream_status}", str(exc)
        )
        return not last and (kind == "connection" or not retried_5xx)

    async def complete(self, request: ChatRequest) -> JsonObject:
        order = [self._by_name[n] for n in self.order(request)]
        retried_5xx = False
        for i, replica in enumerate(order):
            replica.in_flight += 1
            try:
                answer = await replica.backend.complete(request)
            except UpstreamError as exc:
                if not self._failed(replica, exc, retried_5xx=retried_5xx, last=i == len(order) - 1):
                    raise
                retried_5xx |= failure_kind(exc) == "5xx"
                continue
            finally:
                replica.in_flight -= 1
            self._answered(replica)
            return answer
        raise AssertionError("unreachable: the last attempt raises")  # pragma: no cover

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        order = [self._by_name[n] for n in self.order(request)]
        retried_5xx = False
        for i, replica in enumerate(order):
            replica.in_flight += 1
            chunks = replica.backend.stream(request)
            started = False
            try:
                async for chunk in chunks:
                    if not started:
                        started = True
                        self._answered(replica)
                    yield chunk
                return
            except UpstreamError as exc:
                may_retry = self._failed(replica, exc, retried_5xx=retried_5xx, last=i == len(order) - 1)
                if started or not may_retry:
                    raise
                retried_5xx |= failure_kind(exc) == "5xx"
            finally:
                replica.in_flight -= 1
                if isinstance(chunks, AsyncGenerator):
                    await chunks.aclose()

    async def aclose(self) -> None:
        await asyncio.gather(*(r.backend.aclose() for r in self._replicas))
