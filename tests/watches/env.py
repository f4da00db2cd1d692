"""A WatchService on a real StreamRegistry, with a fake ChatRunner at the seam whose answers carry the
number of the newest frame of the stream (frames are numbered by their lifetime index)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livesight.buffer.pool import BufferPool
from livesight.core.clock import FakeClock
from livesight.core.errors import LivesightError
from livesight.core.frame import IngestFrame, JpegPayload
from livesight.core.outbound import OutboundPolicy
from livesight.resolve.draft import ChatDraft
from livesight.serving.build import draft_from
from livesight.serving.protocol import ChatCompletionRequest
from livesight.store.watches import SQLiteWatchStore
from livesight.streams.registry import StreamRegistry
from livesight.streams.stream import Stream
from livesight.watches.gate import ModelGate
from livesight.watches.model import WatchLimits, WatchSpec
from livesight.watches.service import WatchService
from livesight.watches.webhooks import Deliverer
from tests.support.frames import text_jpeg

OWNER = "owner-a"


@dataclass
class FakeRunner:
    """Answers `{"n": <newest frame index>}`; `delay_s` makes it slow, `fail` raises instead."""

    registry: StreamRegistry
    delay_s: float = 0.0
    fail: Callable[[], LivesightError | None] = lambda: None
    running: int = 0
    most_running: int = 0
    calls: int = 0
    seen: list[int] = field(default_factory=list)

    async def check(self, body: ChatCompletionRequest) -> ChatDraft:
        return draft_from(body)

    async def complete(self, body: ChatCompletionRequest, owner: str) -> dict[str, object]:
        self.calls += 1
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await asyncio.sleep(self.delay_s)
            error = self.fail()
            if error is not None:
                raise error
            url = body.model_dump()["messages"][0]["content"][0]["image_url"]["url"]
            stream_id = url.split("/")[3].split("?")[0]
            window = self.registry.window(self.registry.get(stream_id, owner))
            n = window.last_index if window is not None else None
            assert n is not None
            self.seen.append(n)
            return {
                "choices": [{"index": 0, "message": {"role": "assistant", "content": json.dumps({"n": n})}}],
                "overshoot": {
                    "frames": [{"url": url, "stream_id": stream_id, "frame_indexes": [n], "timestamps_ms": [n]}],
                    "timing": {"total_ms": 1.0},
                },
            }
        finally:
            self.running -= 1


@dataclass
class Env:
    clock: FakeClock
    registry: StreamRegistry
    runner: FakeRunner
    service: WatchService
    stream: Stream

    def push(self, count: int = 1, jpeg: Callable[[int], bytes] | None = None) -> None:
        target = self.registry.ingest_target(self.stream.id)
        assert target is not None
        window = self.registry.window(self.stream)
        start = window.next_index if window is not None else 0
        for i in range(start, start + count):
            self.clock.advance(100)
            data = (jpeg or (lambda n: text_jpeg(f"FRAME {n}")))(i)
            target.push_frame(IngestFrame("s", float(i * 100), 640, 360, JpegPayload(data)))

    def request(self, stream_id: str | None = None) -> dict[str, Any]:
        url = f"ovs://streams/{stream_id or self.stream.id}?frame_index=-1"
        return {
            "model": "fake",
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}],
            "response_format": {"type": "json_object"},
        }

    async def create(self, **spec: Any) -> Any:
        spec.setdefault("interval_ms", 50)
        webhook = spec.pop("webhook", None)
        if webhook is not None:
            spec.update(webhook_url=webhook["url"], webhook_secret=webhook.get("secret"))
        return await self.service.create(OWNER, self.request(), WatchSpec(**spec))


@contextlib.asynccontextmanager
async def watch_env(
    db: Path | None = None,
    *,
    limits: WatchLimits | None = None,
    max_calls: int = 4,
    registry: StreamRegistry | None = None,
) -> AsyncIterator[Env]:
    """`registry` given: a restart of the watch service alone (the streams carry on)."""
    clock = registry.clock if registry is not None else FakeClock()
    assert isinstance(clock, FakeClock)
    registry = registry or StreamRegistry(clock, BufferPool(clock))
    runner = FakeRunner(registry)
    policy = OutboundPolicy.build(allow=["127.0.0.0/8"])
    service = WatchService(
        registry,
        runner,
        clock,
        ModelGate(max_calls),
        Deliverer(policy, timeout_s=2, first_backoff_s=0.05),
        limits or WatchLimits(),
        SQLiteWatchStore(db) if db is not None else None,
    )
    service.start()
    stream = registry.create(OWNER)
    try:
        yield Env(clock, registry, runner, service, stream)
    finally:
        await service.aclose()


async def until(fn: Callable[[], Any], limit_s: float = 5.0, what: str = "condition") -> Any:
    """Poll on the event loop (generous bound: a correctness timeout, not a measurement)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while True:
        value = fn()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {limit_s}s waiting for {what}")
        await asyncio.sleep(0.01)
