"""Egress for FFmpeg: every connection a pulled source makes passes the outbound policy.

FFmpeg (PyAV) opens pulled sources and would follow HTTP redirects, HLS playlist entries, segment
and key URLs and RTSP redirects to any address. So FFmpeg never connects anywhere itself:

- HTTP and HLS: FFmpeg gets `http_proxy` = this module's forward proxy on 127.0.0.1. FFmpeg's http
  protocol sends every request through it (absolute-form for http, CONNECT for https), follows a
  redirect with a new request through it, and the hls demuxer hands `http_proxy` to every playlist,
  segment and key it opens. `protocol_whitelist` (set by ingest/pull.py) keeps a playlist from naming
  file:, udp:, rtp: ... URLs. FFmpeg bypasses a proxy for hosts in the `no_proxy` environment
  variable (it reads only the lower-case name), so `blind_ffmpeg_no_proxy` renames it to NO_PROXY,
  which Python's clients read just the same.
- RTSP (always over TCP): FFmpeg connects to a single-use relay on 127.0.0.1 that connects to the
  camera's checked address (TLS for rtsps://, terminated here so the relay can read the session).
  The relay reads every RTSP message the camera sends: a 3xx redirect (FFmpeg would reconnect to its
  Location directly) gets its Location replaced by a new relay to the target, checked like the first
  hop (at most 5 redirects), or, when refused, becomes `403 Forbidden`. Interleaved RTP frames pass
  untouched.

Each connection resolves the host name once, checks every resolved address and connects to the
checked one (no second lookup, so no DNS rebinding). Refusals and failures are logged here with the
reason and the source's tag; FFmpeg only sees a 403/502 and the client a generic message.

Other local users: the proxy requires per-source credentials (`Proxy-Authorization`, answered with
a 407 challenge that FFmpeg answers) and a relay accepts one connection only. Neither would give a
local user more than they have anyway (the policy only admits destinations any local process can
reach), but they keep requests attributable to a stream.

The proxy runs its own event loop on its own thread, so neither the bytes it relays nor its DNS
lookups touch the server's loop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import secrets
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

from livesight.core.outbound import OutboundPolicy, OutboundRefused
from livesight.ingest.egress_rtsp import relay_rtsp_responses

log = logging.getLogger(__name__)
_HEAD_LIMIT = 64 * 1024
_HOP_HEADERS = {b"proxy-connection", b"proxy-authorization", b"connection", b"keep-alive"}


def blind_ffmpeg_no_proxy() -> None:
    """FFmpeg connects directly to hosts in `no_proxy` (lower case only): move it to NO_PROXY."""
    value = os.environ.pop("no_proxy", None)
    if value is not None:
        os.environ.setdefault("NO_PROXY", value)
        log.info("moved no_proxy to NO_PROXY so pulled sources cannot bypass the egress proxy")


async def resolve_checked(policy: OutboundPolicy, host: str, port: int) -> list[str]:
    """Every address `host` resolves to, each one checked by the policy (the lookup runs in the
    default executor). Connect only to these: never resolve the name again."""
    policy.check_host(host)
    infos = await asyncio.get_running_loop().getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    policy.check_addresses(host, port, addresses)
    return addresses


async def connect_checked(
    addresses: list[str],
    port: int,
    timeout_s: float,
    *,
    tls: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to the first checked address that answers (over TLS with `tls`, checking the certificate
    against `server_hostname` as the context says); OSError (the last failure) if none does."""
    failure: OSError = OSError(f"no address to connect to for port {port}")
    for ip in addresses:
        try:
            connecting = asyncio.open_connection(ip, port, ssl=tls, server_hostname=server_hostname)
            return await asyncio.wait_for(connecting, timeout_s)
        except (OSError, TimeoutError) as exc:  # TimeoutError is an OSError
            failure = exc
    raise failure


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


async def _splice(
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    downstream: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]] = _pipe,
) -> None:
    """Copy both ways until either side closes, then close both."""
    tasks = [
        asyncio.ensure_future(_pipe(client[0], upstream[1])),
        asyncio.ensure_future(downstream(upstream[0], client[1])),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for writer in (client[1], upstream[1]):
            writer.close()


def _reply(writer: asyncio.StreamWriter, status: str, extra: str = "") -> None:
    writer.write(f"HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n".encode())


class Egress:
    """The policy-enforcing proxy and RTSP relays of one process (started on first use)."""

    def __init__(self, policy: OutboundPolicy, *, connect_timeout_s: float = 10.0) -> None:
        self.policy = policy
        self.connect_timeout_s = connect_timeout_s
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._port = 0
        self._credentials: dict[str, str] = {}  # b64(user:password) -> tag
        blind_ffmpeg_no_proxy()  # here, at startup on the main thread, not while FFmpeg threads read it

    # --- lifecycle (any thread) -------------------------------------------------------------------

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name="livesight-egress", daemon=True)
                self._thread.start()
                self._server = asyncio.run_coroutine_threadsafe(
                    asyncio.start_server(self._proxy_client, "127.0.0.1", 0, limit=_HEAD_LIMIT), loop
                ).result(10)
                self._port = self._server.sockets[0].getsockname()[1]
                self._loop = loop
            return self._loop

    def close(self) -> None:
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is None:
            return

        async def stop() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=2)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        loop.close()

    # --- what a pulled source asks for (its own thread; blocking) -----------------------------------

    def proxy_url(self, tag: str) -> str:
        """`http_proxy` for FFmpeg, with credentials of this source (they name it in the log); valid
        until `release(tag)`."""
        self._started()
        password = secrets.token_urlsafe(16)
        with self._lock:
            self._credentials[base64.b64encode(f"livesight:{password}".encode()).decode()] = tag
        return f"http://livesight:{password}@127.0.0.1:{self._port}"

    def release(self, tag: str) -> None:
        with self._lock:
            for credential in [c for c, t in self._credentials.items() if t == tag]:
                del self._credentials[credential]

    def rtsp_relay(self, tag: str, url: str, timeout_s: float = 15.0) -> str:
        """The URL FFmpeg should open instead of `url`: a single-use relay to its checked address.

        Raises OutboundRefused (policy) or OSError (the name does not resolve)."""
        loop = self._started()
        return asyncio.run_coroutine_threadsafe(self._open_relay(tag, url, timeout_s), loop).result(timeout_s + 5)

    # --- the RTSP relay ---------------------------------------------------------------------------

    async def _open_relay(self, tag: str, url: str, timeout_s: float, redirects: int = 5) -> str:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("rtsp", "rtsps"):
            raise OutboundRefused(f"{url!r} is not an rtsp:// or rtsps:// URL")
        tls = parts.scheme.lower() == "rtsps"
        host, port = parts.hostname or "", parts.port or (322 if tls else 554)
        addresses = await resolve_checked(self.policy, host, port)
        accepted = asyncio.Event()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if accepted.is_set():  # single use
                writer.close()
                return
            accepted.set()
            server.close()
            with contextlib.suppress(asyncio.CancelledError):  # cancelled by close()
                await self._relay(tag, (reader, writer), (host, addresses, port, tls), timeout_s, redirects)

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        local = server.sockets[0].getsockname()[1]
        asyncio.get_running_loop().call_later(timeout_s, server.close)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{local}" if userinfo else f"127.0.0.1:{local}"
        log.debug("pulled source %s: rtsp relay 127.0.0.1:%d -> %s %s port %d", tag, local, host, addresses, port)
        return urlunsplit(("rtsp", netloc, parts.path, parts.query, ""))

    async def _relay(
        self,
        tag: str,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        camera: tuple[str, list[str], int, bool],
        timeout_s: float,
        redirects: int,
    ) -> None:
        host, addresses, port, tls = camera
        context = None
        if tls:  # same as FFmpeg's default (tls_verify=0): cameras mostly have self-signed certificates
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        try:
            server_hostname = host if tls else None
            upstream = await connect_checked(
                addresses, port, self.connect_timeout_s, tls=context, server_hostname=server_hostname
            )
        except OSError as exc:
            log.warning("pulled source %s: cannot connect to %s %s port %d: %r", tag, host, addresses, port, exc)
            client[1].close()
            return

        async def redirect(location: str) -> str | None:
            """A new relay to the redirect's target, checked like the first hop; None refuses it."""
            try:
                if redirects <= 0:
                    raise OutboundRefused("too many redirects")
                return await self._open_relay(tag, location, timeout_s, redirects - 1)
            except (OutboundRefused, OSError, ValueError) as exc:
                log.warning("pulled source %s: refused an RTSP redirect to %r: %s", tag, location, exc)
                return None

        async def downstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await relay_rtsp_responses(reader, writer, redirect)

        await _splice(client, upstream, downstream)

    # --- the HTTP forward proxy -------------------------------------------------------------------

    async def _proxy_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.CancelledError):  # cancelled by close(): nothing to report
            await self._proxy(reader, writer)

    async def _proxy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.connect_timeout_s)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            writer.close()
            return
        lines = head.split(b"\r\n")
        request = lines[0].decode("latin-1").split(" ")
        headers = [line for line in lines[1:] if line]
        tag = self._authorized(headers)
        if tag is None:
            _reply(writer, "407 Proxy Authentication Required", 'Proxy-Authenticate: Basic realm="livesight"\r\n')
            writer.close()
            return
        if len(request) != 3:
            _reply(writer, "400 Bad Request")
            writer.close()
            return
        method, target, version = request
        try:
            if method == "CONNECT":
                host, _, port_text = target.rpartition(":")
                port, first = int(port_text), b""
            else:
                parts = urlsplit(target)
                if parts.scheme.lower() != "http" or not parts.hostname:
                    raise OutboundRefused(f"proxy request for {target!r} is not an absolute http:// URL")
                host, port = parts.hostname, parts.port or 80
                path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
                kept = [h for h in headers if h.split(b":", 1)[0].strip().lower() not in _HOP_HEADERS]
                first = b"\r\n".join([f"{method} {path} {version}".encode("latin-1"), *kept, b"Connection: close"])
                first += b"\r\n\r\n"
            addresses = await resolve_checked(self.policy, host, port)
        except (OutboundRefused, ValueError) as exc:
            log.warning("pulled source %s: refused %s %s: %s", tag, method, target, exc)
            _reply(writer, "403 Forbidden")
            writer.close()
            return
        except OSError as exc:
            log.warning("pulled source %s: cannot resolve %s: %r", tag, host, exc)
            _reply(writer, "502 Bad Gateway")
            writer.close()
            return
        try:
            upstream = await connect_checked(addresses, port, self.connect_timeout_s)
        except OSError as exc:
            log.warning("pulled source %s: cannot connect to %s %s port %d: %r", tag, host, addresses, port, exc)
            _reply(writer, "502 Bad Gateway")
            writer.close()
            return
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            upstream[1].write(first)
        await _splice((reader, writer), upstream)

    def _authorized(self, headers: list[bytes]) -> str | None:
        for header in headers:
            name, _, value = header.partition(b":")
            if name.strip().lower() == b"proxy-authorization":
                scheme, _, credential = value.strip().decode("latin-1").partition(" ")
                if scheme.lower() == "basic":
                    with self._lock:
                        return self._credentials.get(credential.strip())
        return None
