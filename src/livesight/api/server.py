"""The HTTP server: `server_config(app, settings)` is the one uvicorn configuration (used by `serve`,
`demo` and the test server), and `GuardedHttpProtocol` bounds what connections may cost.

What uvicorn enforces by itself (0.54, httptools): a keep-alive connection idle after a response is
closed after `timeout_keep_alive`. Nothing else: a connection that sends nothing, or sends part of its
request headers and stops (slowloris), stays open for ever, holding a file descriptor; and uvicorn's
`limit_concurrency` counts idle sockets and every long-lived websocket, so a few publishers or idle
browsers could starve the API. So this module adds, on top of uvicorn's httptools protocol:

- a header timeout (`http_header_timeout_s`): the complete request headers must arrive within it of
  the connection opening, or of the first byte of a later request on a keep-alive connection (bytes
  that begin no request, such as bare CRLFs, start it too), else the connection is closed;
- a connection cap (`http_max_connections`) on open HTTP connections. Upgraded websockets (`/rtc`
  signalling) are not counted: they are bounded by the number of streams, and each needs a valid
  publish token. Past the cap up to `RESERVE` more connections are accepted, each with at most
  `OVER_CAP_HEADER_TIMEOUT_S` to send its headers: health checks (`/healthz`, `/readyz`) and
  signalling (`/rtc...`) are served, every other request gets 503 `server_busy` with `Retry-After`
  and `Connection: close`. Past cap + reserve a new connection is closed at once, so the file
  descriptors that connections hold are bounded by cap + reserve.
- The cap is lowered, with a warning, to fit half of the process's open-file limit (`ulimit -n`): the
  other half is for media sockets, FFmpeg pipes, files and upstream connections.

Websockets keep uvicorn's ping/pong (a dead peer is dropped after `ws_ping_interval` + `ws_ping_timeout`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TypedDict, Unpack, cast

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.config import LifespanType
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from livesight.api.errors import error_response
from livesight.core.errors import ServerBusy
from livesight.settings import Settings

try:
    import resource
except ImportError:  # pragma: no cover (not POSIX)
    resource = None  # type: ignore[assignment]

log = logging.getLogger("livesight.server")

RESERVE = 16  # connections accepted past the cap, to answer health checks and signalling, and 503 to others
OVER_CAP_HEADER_TIMEOUT_S = 1.0
EXEMPT_PATHS = frozenset({b"/healthz", b"/readyz"})
EXEMPT_PREFIX = b"/rtc"  # LiveKit signalling: /rtc, /rtc/v1, /rtc/validate, /rtc/v1/validate
WS_MAX_BYTES = 16 * 1024 * 1024
BUSY_LOG_INTERVAL_S = 10.0


@dataclass
class ConnectionGuard:
    """The open HTTP connections of one server, and the limits they are held to."""

    header_timeout_s: float
    max_connections: int
    open: set[GuardedHttpProtocol] = field(default_factory=set)
    _busy_logged_at: float = float("-inf")

    def admit(self, conn: GuardedHttpProtocol) -> float | None:
        """Count a new connection; its header timeout, or None when it must be closed at once."""
        if len(self.open) >= self.max_connections + RESERVE:
            self._log_busy()
            return None
        over = len(self.open) >= self.max_connections
        self.open.add(conn)
        return min(self.header_timeout_s, OVER_CAP_HEADER_TIMEOUT_S) if over else self.header_timeout_s

    def release(self, conn: GuardedHttpProtocol) -> None:
        self.open.discard(conn)

    def over_cap(self) -> bool:
        return len(self.open) > self.max_connections

    async def busy(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app that answers a request past the cap."""
        self._log_busy()
        exc = ServerBusy(
            f"the server is at its connection limit ({self.max_connections}); retry shortly",
            headers={"Retry-After": "1", "Connection": "close"},
        )
        await error_response(exc, scope.get("path", ""))(scope, receive, send)

    def _log_busy(self) -> None:
        now = time.monotonic()
        if now - self._busy_logged_at >= BUSY_LOG_INTERVAL_S:
            self._busy_logged_at = now
            log.warning(
                "connection limit reached: %d open HTTP connections (limit %d + %d reserve); "
                "answering 503 or closing new ones",
                len(self.open),
                self.max_connections,
                RESERVE,
            )


def exempt_from_cap(raw_target: bytes) -> bool:
    path = raw_target.split(b"?", 1)[0]
    return path in EXEMPT_PATHS or path == EXEMPT_PREFIX or path.startswith(EXEMPT_PREFIX + b"/")


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header timeout and a connection cap (see the module docstring)."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, object],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.guard: ConnectionGuard = cast(ServerConfig, config).guard
        self.real_app: ASGIApp = self.app
        self.header_timeout_s = self.guard.header_timeout_s
        self.header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        timeout = self.guard.admit(self)
        if timeout is None:
            self.transport.close()
            return
        self.header_timeout_s = timeout
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.release(self)
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.header_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._arm()  # bytes between requests: the next request's headers are now due
        super().data_received(data)

    def on_message_begin(self) -> None:
        if self.header_timer is None:
            self._arm()  # a pipelined request behind one in progress
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._disarm()
        over = self.guard.over_cap() and not exempt_from_cap(self.url)
        self.app = self.guard.busy if over else self.real_app
        super().on_headers_complete()

    def handle_websocket_upgrade(self) -> None:
        self.guard.release(self)  # websockets are bounded by streams, not by the HTTP cap
        self._disarm()
        super().handle_websocket_upgrade()

    def _arm(self) -> None:
        self._disarm()
        self.header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _disarm(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _header_timeout(self) -> None:
        self.header_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm()  # a response is in progress: a pipelined request's headers may wait for it
            return
        if not self.transport.is_closing():
            self.transport.close()


class UvicornOptions(TypedDict, total=False):
    """The `uvicorn.Config` arguments `server_config` sets (uvicorn's defaults hold for the rest)."""

    host: str
    port: int
    backlog: int
    timeout_keep_alive: int
    log_config: None
    access_log: bool
    lifespan: LifespanType
    timeout_graceful_shutdown: int | None
    ws_max_size: int


class ServerConfig(uvicorn.Config):
    """A uvicorn.Config whose connections are guarded (`guard` is shared by all of them)."""

    def __init__(self, app: ASGIApp, *, guard: ConnectionGuard, **kwargs: Unpack[UvicornOptions]) -> None:
        super().__init__(app, http=GuardedHttpProtocol, **kwargs)
        self.guard = guard


def open_file_limit() -> int | None:
    """The soft RLIMIT_NOFILE, or None when unlimited or unknown."""
    if resource is None:  # pragma: no cover
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def connection_cap(requested: int, fd_limit: int | None) -> int:
    """`requested`, lowered so that cap + reserve fit in half the open-file limit."""
    if fd_limit is None:
        return requested
    return max(1, min(requested, fd_limit // 2 - RESERVE))


def server_config(app: ASGIApp, settings: Settings, *, access_log: bool = False) -> ServerConfig:
    """The uvicorn configuration for `app` from `settings`: bind address, timeouts, connection cap, backlog.

    uvicorn's own access line is off by default (the request middleware logs one line per request);
    tests turn it on to prove it is redacted too."""
    fd_limit = open_file_limit()
    cap = connection_cap(settings.http_max_connections, fd_limit)
    if cap < settings.http_max_connections:
        log.warning(
            "http_max_connections lowered from %d to %d to fit the open-file limit (%s); raise `ulimit -n` for more",
            settings.http_max_connections,
            cap,
            fd_limit,
        )
    return ServerConfig(
        app,
        guard=ConnectionGuard(header_timeout_s=settings.http_header_timeout_s, max_connections=cap),
        host=settings.host,
        port=settings.port,
        backlog=settings.http_backlog,
        timeout_keep_alive=settings.http_keep_alive_timeout_s,
        log_config=None,
        access_log=access_log,
        lifespan="on",
        timeout_graceful_shutdown=5,
        ws_max_size=WS_MAX_BYTES,
    )
