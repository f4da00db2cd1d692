"""The signalling relay of a `livekit_room` source: what the SDK learns from the LiveKit server passes
the outbound policy first.

The SDK connects to this relay (`ws://127.0.0.1:<port>/...`) instead of the server; each connection it
opens (the join, a `/rtc/validate` check, every resume and rejoin) is relayed to the server's checked
address (resolved once per connection, every address checked, never resolved again; TLS to the
server's name for `wss://`, certificate checked). The relay reads every message the server sends on
the signalling WebSocket (LiveKit's v0 protobuf `SignalResponse`) and removes what would make the SDK
connect somewhere the policy refuses:

- ICE candidates (`trickle`, and `a=candidate` lines of the server's SDP offers and answers) whose
  address is refused or is a name (mDNS `.local`): the SDK's ICE agent never tries them;
- TURN/STUN servers (`join`, `reconnect`) whose host is refused or is a name (not resolved here);
- `alternative_url` (join) and `regions` (leave): the SDK stays on this relay.

The v1 signalling path (`/rtc/v1`, a different envelope) answers 404, so the SDK falls back to v0
(it does so for any server that lacks v1). `permessage-deflate` is not offered upstream, so every
frame is readable. The client's frames go upstream untouched. docs/outbound.md says what is still not
covered (peer-reflexive candidates, the SDK's own defaults).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import ssl
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from google.protobuf.message import DecodeError
from livekit.protocol import rtc

from livesight.core.outbound import OutboundPolicy, OutboundRefused
from livesight.ingest.egress import connect_checked, resolve_checked

log = logging.getLogger(__name__)
_HEAD_LIMIT = 64 * 1024
_MESSAGE_LIMIT = 16 * 1024 * 1024
_DROP_HEADERS = ("host:", "sec-websocket-extensions:")
Allowed = Callable[[str, int], bool]


def _candidate_allowed(candidate: str, allowed: Allowed) -> bool:
    """An ICE candidate line (`candidate:f 1 udp prio ADDRESS PORT typ ...`); the empty one ends gathering."""
    fields = candidate.strip().removeprefix("a=").split()
    if not fields:
        return True
    if len(fields) < 6:
        return False
    try:
        return allowed(fields[4], int(fields[5]))
    except ValueError:
        return False


def _ice_url_allowed(url: str, allowed: Allowed) -> bool:
    """`turn:HOST:PORT?transport=udp`, `turns:...`, `stun:...`: only IP literals the policy allows."""
    scheme, _, rest = url.partition(":")
    hostport = rest.split("?", 1)[0]
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        port_text = tail.removeprefix(":")
    else:
        host, _, port_text = hostport.partition(":")
    try:
        ipaddress.ip_address(host)
        port = int(port_text) if port_text else (5349 if scheme.lower() == "turns" else 3478)
    except ValueError:
        return False
    return allowed(host, port)


def _filter_sdp(sdp: str, allowed: Allowed) -> tuple[str, int]:
    lines = sdp.split("\r\n")
    kept = [line for line in lines if not line.startswith("a=candidate:") or _candidate_allowed(line, allowed)]
    return "\r\n".join(kept), len(lines) - len(kept)


def _filter_ice_servers(servers: object, allowed: Allowed) -> int:
    dropped = 0
    for server in list(servers):  # type: ignore[call-overload]
        urls = [u for u in server.urls if _ice_url_allowed(u, allowed)]
        dropped += len(server.urls) - len(urls)
        del server.urls[:]
        server.urls.extend(urls)
        if not urls:
            servers.remove(server)  # type: ignore[attr-defined]
    return dropped


def filter_signal(data: bytes, allowed: Allowed) -> tuple[bytes | None, int]:
    """A server message with what the policy refuses removed (None: drop it whole), and how many
    candidates, servers or URLs were removed. A message that does not parse passes as it is (the SDK
    parses it with the same schema)."""
    try:
        message = rtc.SignalResponse.FromString(data)
    except DecodeError:
        return data, 0
    kind = message.WhichOneof("message")
    dropped = 0
    if kind == "trickle":
        try:
            init = json.loads(message.trickle.candidateInit)
        except ValueError:
            return None, 1
        candidate = init.get("candidate", "") if isinstance(init, dict) else ""
        if not isinstance(candidate, str) or not _candidate_allowed(candidate, allowed):
            return None, 1
        return data, 0
    if kind in ("offer", "answer"):
        description = getattr(message, kind)
        description.sdp, dropped = _filter_sdp(description.sdp, allowed)
    elif kind == "join":
        dropped = _filter_ice_servers(message.join.ice_servers, allowed)
        if message.join.alternative_url:
            message.join.alternative_url, dropped = "", dropped + 1
    elif kind == "reconnect":
        dropped = _filter_ice_servers(message.reconnect.ice_servers, allowed)
    elif kind == "leave" and message.leave.HasField("regions"):
        message.leave.ClearField("regions")
        dropped = 1
    return (message.SerializeToString() if dropped else data), dropped


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final WebSocket frame (server to client)."""
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, n])
    elif n < 1 << 16:
        head = bytes([0x80 | opcode, 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 127]) + n.to_bytes(8, "big")
    return head + payload


class SignalRelay:
    """The relay of one `livekit_room` source, on the event loop (see the module docstring)."""

    def __init__(self, policy: OutboundPolicy, url: str, tag: str, *, connect_timeout_s: float = 10.0) -> None:
        parts = urlsplit(url)
        self.policy = policy
        self.tag = tag
        self.tls = parts.scheme.lower() == "wss"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.tls else 80)
        self.path = parts.path
        default = (self.tls and self.port == 443) or (not self.tls and self.port == 80)
        name = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = name if default else f"{name}:{self.port}"
        self.connect_timeout_s = connect_timeout_s
        self.dropped = 0  # candidates, servers and URLs removed so far
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        """Listen on loopback; the URL to hand the SDK instead of the server's."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=_HEAD_LIMIT)
        port = self._server.sockets[0].getsockname()[1]
        return urlunsplit(("ws", f"127.0.0.1:{port}", self.path, "", ""))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _allowed(self, ip: str, port: int) -> bool:
        try:
            self.policy.check_address(ip, port)
        except OutboundRefused as exc:
            log.info("livekit_room relay of %s: dropped %s:%d (%s)", self.tag, ip, port, exc.message)
            return False
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.connections += 1
        try:
            await self._relay(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, TimeoutError) as exc:
            log.info("livekit_room relay of %s: connection ended: %s", self.tag, exc or type(exc).__name__)
        finally:
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.connect_timeout_s)
        lines = head.decode("latin-1").split("\r\n")
        request_line = lines[0].split(" ")
        if len(request_line) != 3:
            raise ValueError("not an HTTP request")
        if urlsplit(request_line[1]).path.rstrip("/").endswith("/rtc/v1"):
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            return
        headers = [line for line in lines[1:] if line and not line.lower().startswith(_DROP_HEADERS)]
        upstream_head = "\r\n".join([lines[0], f"Host: {self.host_header}", *headers, "", ""]).encode("latin-1")
        try:
            addresses = await resolve_checked(self.policy, self.host, self.port)
        except OutboundRefused as exc:
            log.warning("livekit_room relay of %s: refused: %s", self.tag, exc.message)
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            return
        tls = ssl.create_default_context() if self.tls else None
        server_hostname = self.host if self.tls else None
        up_reader, up_writer = await connect_checked(
            addresses, self.port, self.connect_timeout_s, tls=tls, server_hostname=server_hostname
        )
        up_writer.write(upstream_head)
        tasks = [
            asyncio.ensure_future(_pipe(reader, up_writer)),
            asyncio.ensure_future(self._downstream(up_reader, writer)),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            up_writer.close()

    async def _downstream(self, up: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await up.readuntil(b"\r\n\r\n")
        writer.write(head)
        await writer.drain()
        if head.split(b" ", 2)[1:2] != [b"101"]:
            await _pipe(up, writer)  # a plain HTTP answer (validate, an error): as it is
            return
        opcode, size = 0, 0
        fragments: list[bytes] = []
        while True:
            b0, b1 = await up.readexactly(2)
            fin, code, n = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = int.from_bytes(await up.readexactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await up.readexactly(8), "big")
            mask = await up.readexactly(4) if b1 & 0x80 else b""
            if n > _MESSAGE_LIMIT or size + n > _MESSAGE_LIMIT:
                raise ValueError(f"a signalling message over {_MESSAGE_LIMIT} bytes")
            payload = await up.readexactly(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if code >= 8:  # control frames (close, ping, pong) pass between fragments too
                writer.write(ws_frame(code, payload))
                await writer.drain()
                if code == 8:
                    return
                continue
            if code != 0:
                opcode, fragments, size = code, [], 0
            fragments.append(payload)
            size += n
            if not fin:
                continue
            message: bytes | None = b"".join(fragments)
            fragments, size = [], 0
            if opcode == 2 and message is not None:
                message, dropped = filter_signal(message, self._allowed)
                self.dropped += dropped
            if message is not None:
                writer.write(ws_frame(opcode, message))
                await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
