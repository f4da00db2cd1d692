"""Prometheus metrics: one `CollectorRegistry` per app (never the global default), `GET /metrics`.

`Metrics` implements `core.metrics.Recorder` for the buffer and ingest layers, records requests
(from the middleware) and chat outcomes (from api/chat.py), and reads the buffer and stream state at
scrape time through a collector (nothing on the frame path but two counter increments).

Labels never carry API keys, key ids, owners or stream ids: routes are templates, models are
configured model ids ("unknown" before the model is known), codecs and error codes are closed sets.
Protection (docs/metrics.md): with `metrics_token` set, a scrape needs `Authorization: Bearer
<token>`; without it, only a client on a loopback address may scrape.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from collections.abc import Callable, Iterable

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.responses import Response

from livesight.buffer.pool import BufferPool
from livesight.core.errors import LivesightError, Unauthorized, UpstreamError
from livesight.core.metrics import ChatTiming
from livesight.streams.directory import StreamDirectory

_MS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_ENCODE = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
_AGE = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0)
_FRAMES = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_LAG = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
LOOP_LAG_INTERVAL_S = 0.5


def _codec(codec: str | None) -> str:
    return codec.lower() if codec else "unknown"


class _StateCollector(Collector):
    """Gauges read from the streams and the buffer pool at scrape time (on the event loop)."""

    def __init__(self, streams: StreamDirectory, pool: BufferPool) -> None:
        self._streams = streams
        self._pool = pool

    def collect(self) -> Iterable[Metric]:
        pool = self._pool
        active = self._streams.all_active()
        yield GaugeMetricFamily("livesight_buffer_retained_frames", "Frames held in memory", pool.retained_frames())
        yield GaugeMetricFamily("livesight_buffer_retained_bytes", "JPEG bytes held in memory", pool.nbytes)
        yield CounterMetricFamily(
            "livesight_buffer_evicted_frames", "Frames evicted by retention or budget", pool.evicted_total()
        )
        yield GaugeMetricFamily("livesight_streams_active", "Active streams", len(active))
        yield GaugeMetricFamily(
            "livesight_ingest_active_publishers",
            "Active streams with a connected publisher or pulled source",
            sum(1 for s in active if s.publisher.connected),
        )


class Metrics:
    """Every metric of one app instance, in its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.frames_received = Counter(
            "livesight_ingest_frames_received", "Frames handed to a stream's buffer", ["codec"], registry=r
        )
        self.frames_kept = Counter("livesight_ingest_frames_kept", "Frames appended to a buffer", ["codec"], registry=r)
        self.frames_dropped = Counter(
            "livesight_ingest_frames_dropped",
            "Received frames dropped before the buffer (the encoder pool fell behind)",
            ["codec"],
            registry=r,
        )
        self.encode = Histogram(
            "livesight_ingest_frame_encode_seconds", "JPEG worker time per frame", buckets=_ENCODE, registry=r
        )
        self.decode = Histogram(
            "livesight_ingest_frame_decode_seconds",
            "Video decode time per received frame",
            ["codec"],
            buckets=_ENCODE,
            registry=r,
        )
        self.streams_created = Counter("livesight_streams_created", "Streams created", registry=r)
        self.streams_ended = Counter("livesight_streams_ended", "Streams ended", ["reason"], registry=r)
        self.requests = Counter(
            "livesight_http_requests", "HTTP requests answered", ["route", "method", "status"], registry=r
        )
        self.watch_runs = Counter("livesight_watch_runs", "Watch model calls by outcome", ["outcome"], registry=r)
        self.watch_skips = Counter(
            "livesight_watch_skips", "Watch ticks that started no model call", ["reason"], registry=r
        )
        self.webhook_attempts = Counter(
            "livesight_webhook_attempts", "Webhook delivery attempts by outcome", ["outcome"], registry=r
        )
        self.chat_requests = Counter("livesight_chat_requests", "Chat completions", ["model", "status"], registry=r)
        self.upstream_errors = Counter("livesight_upstream_errors", "Upstream failures", ["code"], registry=r)
        self.resolve = self._seconds("livesight_chat_resolve_seconds", "Resolving ovs:// parts", _MS)
        self.first_token = self._seconds(
            "livesight_chat_upstream_first_token_seconds", "Upstream time to first token", _MS
        )
        self.total = self._seconds("livesight_chat_total_seconds", "Whole chat request", _MS)
        self.frame_age = self._seconds("livesight_chat_newest_frame_age_seconds", "Newest frame's age", _AGE)
        self.frames = Histogram(
            "livesight_chat_frames", "Frames per chat request", ["model"], buckets=_FRAMES, registry=r
        )
        self.loop_lag = Histogram(
            "livesight_event_loop_lag_seconds", "Event-loop delay of a periodic timer", buckets=_LAG, registry=r
        )

    def _seconds(self, name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
        return Histogram(name, doc, ["model"], buckets=buckets, registry=self.registry)

    def watch(self, streams: StreamDirectory, pool: BufferPool) -> None:
        self.registry.register(_StateCollector(streams, pool))

    def count_watches(self, active: Callable[[], int]) -> None:
        """`livesight_watches_active`, read from `active` at scrape time."""
        gauge = Gauge("livesight_watches_active", "Watches that have not ended", registry=self.registry)
        gauge.set_function(active)

    # --- core.metrics.WatchRecorder -----------------------------------------------------------

    def watch_skipped(self, reason: str) -> None:
        self.watch_skips.labels(reason).inc()

    def watch_ran(self, ok: bool) -> None:
        self.watch_runs.labels("ok" if ok else "error").inc()

    def webhook_attempt(self, outcome: str) -> None:
        self.webhook_attempts.labels(outcome).inc()

    # --- core.metrics.Recorder ----------------------------------------------------------------

    def frame_received(self, codec: str | None) -> None:
        self.frames_received.labels(_codec(codec)).inc()

    def frame_kept(self, codec: str | None) -> None:
        self.frames_kept.labels(_codec(codec)).inc()

    def frame_dropped(self, codec: str | None) -> None:
        self.frames_dropped.labels(_codec(codec)).inc()

    def encode_seconds(self, seconds: float) -> None:
        self.encode.observe(seconds)

    def decode_seconds(self, codec: str | None, seconds: float) -> None:
        self.decode.labels(_codec(codec)).observe(seconds)

    def stream_created(self) -> None:
        self.streams_created.inc()

    def stream_ended(self, reason: str) -> None:
        self.streams_ended.labels(reason).inc()

    # --- requests -------------------------------------------------------------------------------

    def request_done(self, route: str, method: str, status: int) -> None:
        self.requests.labels(route, method, str(status)).inc()

    def chat_done(self, model: str, timing: ChatTiming, frames: int) -> None:
        """A chat completion answered; `timing` is its `overshoot.timing` (ms)."""
        self.chat_requests.labels(model, "ok").inc()
        for histogram, ms in (
            (self.resolve, timing.resolve_ms),
            (self.first_token, timing.upstream_first_token_ms),
            (self.total, timing.total_ms),
            (self.frame_age, timing.newest_frame_age_ms),
        ):
            if ms is not None:
                histogram.labels(model).observe(ms / 1000)
        self.frames.labels(model).observe(frames)

    def chat_failed(self, model: str, exc: LivesightError) -> None:
        code = exc.code_for_envelope()  # what the client sees: upstream_http_<status> included
        self.chat_requests.labels(model, code).inc()
        if isinstance(exc, UpstreamError):
            self.upstream_errors.labels(code).inc()

    async def watch_loop_lag(self, interval_s: float = LOOP_LAG_INTERVAL_S) -> None:
        """Sleep `interval_s` again and again; how late each wake-up is goes into the histogram."""
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(interval_s)
            self.loop_lag.observe(max(0.0, loop.time() - before - interval_s))


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_router(metrics: Metrics, token: str | None) -> APIRouter:
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def scrape(request: Request) -> Response:
        if token is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                raise Unauthorized("a valid metrics token is required (Authorization: Bearer <metrics_token>)")
        elif not _loopback(request):
            raise Unauthorized("metrics are served to loopback clients only unless metrics_token is set")
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
