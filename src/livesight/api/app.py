"""`create_app(settings)`: the one composition root. Builds every component and passes it in."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import socket
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypedDict, Unpack

from fastapi import APIRouter, FastAPI, Request
from redis.exceptions import RedisError
from starlette.types import ASGIApp

from livesight import __version__
from livesight.api import chat, cluster, errors, frames, health, internal, models, streams, viewers, watches, web
from livesight.api.auth import make_authenticate
from livesight.api.chat_ratelimit import Limiter, RateLimiter, SharedRateLimiter
from livesight.api.cluster_watches import RemoteWatches
from livesight.api.metrics import Metrics
from livesight.api.metrics import build_router as build_metrics_router
from livesight.api.middleware import RequestContextMiddleware
from livesight.api.schemas import Publish
from livesight.backends.discovery import LocalEngines
from livesight.backends.inflight import InflightBudget
from livesight.backends.registry import ModelRegistry
from livesight.backends.weights import WeightStore
from livesight.buffer.pool import BufferLimits, BufferPool
from livesight.buffer.reader import FrameStoreReader, ReaderLimits
from livesight.codec.jpeg import FrameEncoder
from livesight.core.clock import Clock, SystemClock
from livesight.core.errors import ConfigError
from livesight.core.outbound import OutboundPolicy
from livesight.core.records import RoomCredentials, SourceSpec
from livesight.ingest.hub import EmbeddedIngest
from livesight.ingest.options import IngestOptions
from livesight.ingest.pull import PullSources, RetryPolicy
from livesight.ingest.room_source import RoomSources
from livesight.ingest.routes import build_router as build_rtc_router
from livesight.ingest.tokens import TokenIssuer, load_or_create_secret
from livesight.resolve.request import ChatResolver
from livesight.serving.chat import ChatService
from livesight.settings import Settings
from livesight.store.keys import KeyStore, SQLiteKeyStore
from livesight.store.redis_keys import ClusterKeyStore
from livesight.store.redis_state import ClusterState, WatchCounts, WatchRecords
from livesight.store.streams import SQLiteStreamStore
from livesight.store.watches import SQLiteWatchStore
from livesight.streams.cluster import ClusterDirectory
from livesight.streams.cluster_parts import ClusterConfig
from livesight.streams.directory import StreamDirectory
from livesight.streams.registry import RegistryLimits, StreamRegistry
from livesight.streams.stream import Stream
from livesight.watches.gate import ModelGate
from livesight.watches.model import WatchLimits
from livesight.watches.service import WatchService
from livesight.watches.webhooks import Deliverer

log = logging.getLogger("livesight")
MB = 1024 * 1024


@dataclass
class Components:
    """Everything create_app built, for the CLI and tests to reach (never looked up by routes)."""

    settings: Settings
    clock: Clock
    keys: KeyStore
    registry: StreamRegistry  # the local StreamDirectory (tests reach its pool and counts)
    tokens: TokenIssuer
    models: ModelRegistry
    ingest: EmbeddedIngest
    pulls: PullSources
    metrics: Metrics
    watches: WatchService
    cluster: ClusterDirectory | None = None  # with `redis_url`: the directory every component is handed
    rooms: RoomSources | None = None  # `livekit_room` sources (ingest/room_source.py)
    gateway: RoomSources | None = None  # with `livekit_url`: the published streams' rooms on that server
    internal_app: ASGIApp | None = None  # with `cluster_secret`: what the internal port serves (api/internal.py)
    ready: bool = False
    background: list[asyncio.Task[None]] = field(default_factory=list)


class AppOptions(TypedDict, total=False):
    """The `FastAPI` arguments `create_app` sets (FastAPI's defaults hold for the rest)."""

    title: str
    version: str
    summary: str
    description: str
    lifespan: Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]
    redirect_slashes: bool
    docs_url: str | None
    redoc_url: str | None


class LivesightApp(FastAPI):
    """The FastAPI app, carrying the components it was built from (for the CLI and tests)."""

    def __init__(self, components: Components, **kwargs: Unpack[AppOptions]) -> None:
        super().__init__(**kwargs)
        self.components = components


def publish_url(settings: Settings, request: Request) -> str:
    """Where publishers (and viewers) connect: the user's LiveKit server (`livekit_url`), the configured
    public URL, or this server as the client reached it (a create forwarded from another node: this
    node's own address)."""
    if settings.livekit_url:
        return settings.livekit_url
    if settings.public_url:
        return settings.public_url
    if request.scope.get(internal.FORWARDED) and settings.host not in ("0.0.0.0", "::", ""):  # noqa: S104
        return f"ws://{settings.host}:{settings.port}"
    scheme = "wss" if request.url.scheme in ("https", "wss") else "ws"
    host = request.headers.get("host") or f"{settings.host}:{settings.port}"
    return f"{scheme}://{host}"


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    keys: KeyStore | None = None,
    ingest_options: IngestOptions | None = None,
) -> LivesightApp:
    clock = clock or SystemClock()
    app_metrics = Metrics()  # this app's own registry: never prometheus-client's global one
    own_keys = keys is None
    key_store: KeyStore = keys if keys is not None else SQLiteKeyStore(settings.resolved_db_path)
    state = ClusterState.from_url(settings.redis_url) if settings.redis_url else None
    shared_keys: ClusterKeyStore | None = None
    if state is not None:
        if not isinstance(key_store, SQLiteKeyStore):
            raise ConfigError("a cluster node (redis_url) keeps its API keys in SQLite to share them")
        key_store = shared_keys = ClusterKeyStore(key_store, state, clock)
    pool = BufferPool(
        clock,
        BufferLimits(
            retention_ms=settings.retention_seconds * 1000,
            stream_budget_bytes=settings.stream_buffer_mb * MB,
            global_budget_bytes=settings.global_buffer_mb * MB,
        ),
        reader=FrameStoreReader(
            ReaderLimits(
                workers=settings.decode_workers,
                queue_limit=settings.decode_queue_limit,
                cache_bytes=settings.decode_cache_mb * MB,
                max_side=settings.frame_max_side,
                quality=settings.jpeg_quality,
                warm_s=settings.live_decode_warm_seconds,
            ),
            recorder=app_metrics,
        ),
    )
    registry = StreamRegistry(
        clock,
        pool,
        RegistryLimits(
            ttl_seconds=settings.stream_ttl_seconds,
            tombstone_ms=settings.tombstone_seconds * 1000,
            max_active_per_owner=settings.max_active_streams_per_key,
            max_tombstones=settings.max_tombstones,
            expire_locally=state is None,  # in a cluster the Redis reaper decides (streams/cluster.py)
        ),
        # Loads the stored records now: active streams continue, their pulled sources restart in lifespan.
        # A cluster node keeps its records in Redis instead (its streams end with it: docs/scale-out.md).
        SQLiteStreamStore(settings.resolved_db_path) if settings.persist_streams and state is None else None,
        background_writes=True,  # SQLite off the event loop (streams/journal.py)
        recorder=app_metrics,
    )
    shared = None
    watch_counts = None
    watch_records = None
    if state is not None:
        node = ClusterConfig(
            node_id=settings.node_id or _host_node_id(),
            claim_ttl_ms=settings.owner_lease_ms,
            tick_ms=settings.cluster_tick_ms,
            grace_ms=settings.owner_lease_ms,
            capacity=settings.node_max_streams,
            internal_url=settings.internal_url,
        )
        shared = ClusterDirectory(registry, state, node, clock)
        watch_counts = WatchCounts(state, node.node_id, ttl_ms=3 * node.tick_ms)
        watch_records = WatchRecords(state, node.node_id, ended_kept_ms=settings.watch_ended_retention_s * 1000)
    directory: StreamDirectory = shared or registry  # what every component is handed
    app_metrics.watch(directory, pool)
    secret = settings.livekit_api_secret or load_or_create_secret(settings.data_dir / "livekit.secret")
    tokens = TokenIssuer(settings.livekit_api_key, secret, settings.publish_token_ttl_seconds)
    # Bounded pool for media CPU work on the request path (mp4 encode, thumbnails).
    media_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="livesight-media")
    local_engines = LocalEngines.from_settings(settings)  # Ollama / llama.cpp on this machine (docs/local-models.md)
    model_registry = ModelRegistry(
        settings.models,
        clock=clock,
        builtins=settings.builtin_models,
        executor=media_executor,
        probe_ttl_ms=round(settings.model_probe_ttl_s * 1000),
        inflight=InflightBudget(settings.upstream_inflight_mb * MB, settings.upstream_inflight_wait_s),
        discover=local_engines.discover if local_engines else None,
        discover_ttl_ms=round(settings.discovery_ttl_s * 1000),
        weights=WeightStore(settings.data_dir / "models", settings.hf_endpoint, settings.hf_token),
        auto_pull=settings.auto_pull_models,
        vlm_threads=settings.vlm_threads,
    )
    forwarder = None
    if shared is not None and settings.cluster_secret:
        forwarder = internal.Forwarder(shared, settings.cluster_secret, settings.forward_timeout_s)
    remote_watches = None
    if forwarder is not None and state is not None:  # a cluster with an internal port: watches on their owners
        remote_watches = RemoteWatches(forwarder, state, ended_kept_ms=settings.watch_ended_retention_s * 1000)
    resolver = ChatResolver(
        directory,
        settings.max_segment_frames,
        settings.max_request_frames,
        remote=internal.RemoteFrames(forwarder) if forwarder is not None else None,
    )
    chat_service = ChatService(model_registry, resolver, clock, app_metrics)
    limiter: Limiter = RateLimiter(settings.rate_limit_rps, clock)
    if settings.redis_url:  # counted across the cluster; this node's bucket while Redis is unreachable
        limiter = SharedRateLimiter(settings.rate_limit_rps, settings.redis_url, limiter)
    encoder = FrameEncoder(
        settings.decode_workers, max_side=settings.frame_max_side, quality=settings.jpeg_quality, recorder=app_metrics
    )
    ingest = EmbeddedIngest(directory, tokens, clock, ingest_options or IngestOptions.from_settings(settings))
    pulls = PullSources(
        directory,
        encoder,
        settings.source_file_dir,
        settings.outbound_policy(hosts=settings.source_allowed_hosts),
        RetryPolicy(max_failures=settings.source_max_failures),
    )
    rooms = RoomSources(
        directory,
        encoder,
        settings.outbound_policy(hosts=settings.source_allowed_hosts),
        RetryPolicy(max_failures=settings.source_max_failures),
    )
    gateway = None  # with livekit_url: each published stream's room joined on the user's LiveKit server
    if settings.livekit_url:
        # the operator's own server (a setting, not a caller's URL): any address, no relay (docs/outbound.md)
        retry = RetryPolicy(max_failures=settings.source_max_failures)
        gateway = RoomSources(directory, encoder, OutboundPolicy.anywhere(), retry, relay=False)
    gate = ModelGate(settings.watch_max_concurrent_calls)
    watch_service = WatchService(
        directory,
        chat_service,
        clock,
        gate,
        Deliverer(
            settings.outbound_policy(),
            timeout_s=settings.webhook_timeout_s,
            first_backoff_s=settings.webhook_first_backoff_s,
            max_backoff_s=settings.webhook_max_backoff_s,
            give_up_s=settings.webhook_give_up_s,
        ),
        WatchLimits(
            max_active_per_owner=settings.max_active_watches_per_key,
            results_kept=settings.watch_results_kept,
            results_max_age_ms=settings.watch_results_max_age_s * 1000,
            ended_kept_ms=settings.watch_ended_retention_s * 1000,
        ),
        SQLiteWatchStore(settings.resolved_db_path) if settings.persist_watches else None,
        recorder=app_metrics,
        quota=watch_counts,  # in a cluster the per-key limit counts every node's watches
        places=watch_records,  # in a cluster: which node runs each watch, and its snapshot
    )
    if shared is not None and watch_counts is not None:
        counts = watch_counts
        shared.tick_hooks.append(lambda: counts.publish(watch_service.counts_by_owner()))
        shared.tick_hooks.append(watch_service.publish)
    app_metrics.count_watches(watch_service.active_count)
    parts = Components(
        settings,
        clock,
        key_store,
        registry,
        tokens,
        model_registry,
        ingest,
        pulls,
        app_metrics,
        watch_service,
        shared,
        rooms=rooms,
        gateway=gateway,
    )

    async def nodes_view() -> cluster.ClusterView:
        return await cluster.cluster_view(shared, registry)

    def publish_for(stream: Stream, request: Request) -> Publish | None:
        if stream.source is not None:
            return None
        return Publish(url=publish_url(settings, request), token=tokens.publish_token(stream.id))

    def start_source(stream: Stream) -> None:
        """Start what feeds the stream's buffer here: its pulled source, or (with `livekit_url`) the
        gateway that joins its room on the user's LiveKit server; a published stream otherwise needs none."""
        if stream.source is None:
            if gateway is not None:
                gateway.start(stream.id, gateway_spec(settings, secret, stream.id))
            return
        on_failed = functools.partial(directory.end, stream, "source_failed")
        if stream.source.type == "livekit_room":
            rooms.start(stream.id, stream.source, on_failed)
        else:
            pulls.start(stream.id, stream.source.type, stream.source.url, on_failed)

    if shared is not None and gateway is not None:
        # a published stream's media lives on the user's LiveKit server: a lost node's streams are
        # re-placed on a surviving node, which rejoins their rooms (docs/scale-out.md "Your LiveKit cluster")
        shared.adopt_lost = lambda stream: stream.source is None
        shared.on_adopted.append(start_source)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        parts.background.append(asyncio.create_task(_reap_forever(directory, settings.reaper_interval_ms)))
        parts.background.append(asyncio.create_task(app_metrics.watch_loop_lag()))
        if shared is not None and shared_keys is not None:
            await shared.tick()  # joined (or known unreachable: /readyz says so) before it says ready
            with contextlib.suppress(RedisError, OSError):
                await shared_keys.sync()
            parts.background.append(asyncio.create_task(shared.run()))
            parts.background.append(asyncio.create_task(shared_keys.run()))
        model_registry.start(preload=settings.preload_builtin_models)
        _restart_sources(directory, start_source)
        watch_service.start()  # resumes stored watches whose streams are still active
        parts.ready = True
        try:
            yield
        finally:
            parts.ready = False
            if shared is not None:
                await shared.drain()  # no placements here from now on (SIGTERM already said so: cli/serve.py)
            await watch_service.aclose()
            if shared is not None and gateway is not None:
                handed = await shared.hand_off()  # their media lives on LiveKit: other nodes take them over
                log.info("shutdown: handed %d streams to the other nodes", handed)
            if not directory.durable:
                ended = directory.end_all("deleted")
                log.info("shutdown: ended %d active streams", ended)
                await watch_service.flush()  # a cluster: its watches' ends reach Redis before the node leaves
            await pulls.aclose()
            await rooms.aclose()
            if gateway is not None:
                await gateway.aclose()
            await ingest.aclose()
            encoder.close()
            pool.reader.close()
            if shared is not None and shared_keys is not None:
                shared.stop()
                shared_keys.stop()
            for task in parts.background:
                task.cancel()
            await asyncio.gather(*parts.background, return_exceptions=True)
            if shared is not None:
                await shared.aclose()  # the ends queued above land in Redis, then the node leaves
            if directory.durable:
                kept = len(directory.all_active())
                directory.close()  # a last checkpoint; the streams stay active in the store
                log.info("shutdown: kept %d active streams (they continue after a restart)", kept)
            if forwarder is not None:
                await forwarder.aclose()
            await model_registry.aclose()
            media_executor.shutdown(wait=False, cancel_futures=True)
            if own_keys:
                key_store.close()

    app = LivesightApp(
        parts,
        title="livesight",
        version=__version__,
        summary="Ask any vision-language model about any moment of a live video (Overshoot v1 compatible).",
        description="Every endpoint under /v1 is also served under /v1beta.",
        lifespan=lifespan,
        redirect_slashes=False,
        docs_url=None,  # /docs is api/web.py's page, with Swagger UI served from this origin
        redoc_url=None,  # ReDoc would load its bundle and fonts from CDNs: off
    )
    authenticate = make_authenticate(key_store)
    allowed = errors.AllowedMethods()
    errors.install(app, allowed)

    def include(router: APIRouter, prefix: str = "", *, schema: bool = True) -> None:
        allowed.add(router, prefix)
        app.include_router(router, prefix=prefix, include_in_schema=schema)

    for prefix in ("/v1", "/v1beta"):
        schema = prefix == "/v1"
        include(streams.build_router(directory, authenticate, publish_for, start_source), prefix, schema=schema)
        view_url = functools.partial(publish_url, settings)
        include(viewers.build_router(directory, authenticate, tokens, view_url), prefix, schema=schema)
        include(frames.build_router(directory, authenticate, media_executor), prefix, schema=schema)
        include(chat.build_router(chat_service, authenticate, limiter, gate), prefix, schema=schema)
        include(models.build_router(model_registry), prefix, schema=schema)
        include(watches.build_router(watch_service, authenticate, remote_watches), prefix, schema=schema)
        include(cluster.build_router(nodes_view, authenticate, settings.admin_key_ids), prefix, schema=schema)
    include(models.build_router(model_registry), schema=False)
    # LiveKit signalling: /rtc, /rtc/v1, */validate; refusals rendered by the one error mapping
    if not settings.livekit_url:  # with livekit_url, publishers and viewers go to that server instead
        include(build_rtc_router(ingest, errors.rtc_refusal_response), schema=False)
    include(health.build_router(lambda: _not_ready(parts)))
    include(build_metrics_router(app_metrics, settings.metrics_token), schema=False)  # docs/metrics.md
    include(web.build_router(), schema=False)  # the playground page: /, /playground, /assets/*; and /docs
    if forwarder is not None and shared is not None and settings.cluster_secret:
        include(internal.build_router(directory), schema=False)  # /_cluster/*: the internal port only
        app.add_middleware(internal.ForwardingMiddleware, forwarder=forwarder, watches=remote_watches)
        parts.internal_app = internal.InternalApp(app, settings.cluster_secret, shared)
    app.add_middleware(
        RequestContextMiddleware, max_body_bytes=settings.max_body_bytes, on_request=app_metrics.request_done
    )
    return app


def _not_ready(parts: Components) -> str | None:
    if not parts.ready:
        return "starting up"
    if parts.cluster is not None and not parts.cluster.reachable:
        return "the cluster state (Redis) is unreachable"
    return None


def _host_node_id() -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:64]
    return name or "node"


def gateway_spec(settings: Settings, secret: str, stream_id: str) -> SourceSpec:
    """With `livekit_url`: the stream's room on the user's LiveKit server, joined with its API key."""
    assert settings.livekit_url is not None
    credentials = RoomCredentials(api_key=settings.livekit_api_key, api_secret=secret)
    return SourceSpec(type="livekit_room", url=settings.livekit_url, room=stream_id, credentials=credentials)


def _restart_sources(directory: StreamDirectory, start_source: Callable[[Stream], None]) -> None:
    """Pull again the sources of streams restored from the store, and (with `livekit_url`) rejoin their
    rooms (a failure shows as last_error)."""
    for stream in directory.all_active():
        try:
            start_source(stream)
        except Exception as exc:
            log.warning("stream %s: its pulled source did not restart: %s", stream.id, exc)
            target = directory.ingest_target(stream.id)
            if target is not None:
                target.report_error(f"pulled source did not restart after a server restart: {exc}")


async def _reap_forever(directory: StreamDirectory, interval_ms: int) -> None:
    while True:
        try:
            for stream_id in directory.reap():
                log.info("stream expired", extra={"stream_id": stream_id})
        except Exception:
            log.exception("reaper tick failed")
        await asyncio.sleep(interval_ms / 1000)
