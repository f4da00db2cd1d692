"""The node-to-node side of a cluster (docs/scale-out.md): placement, forwarding to a stream's owner,
and remote frames for a chat request that spans nodes.

- **The internal port** (`InternalApp`): a second listener that serves only requests carrying the
  cluster secret (`cluster_secret`, compared in constant time) under `/internal/`. `/internal/v1/...`
  is the public API as the owner answers it (the caller's API key travels with the request and is
  checked there); `/internal/_cluster/...` are the frame endpoints below. It is not the public API: the
  public port answers 404 for `/_cluster/...`, and never forwards a request that came in forwarded
  (no loops).
- **Forwarding** (`ForwardingMiddleware`, on the public port): a request for a stream this node does
  not own (GET/DELETE `/streams/{id}`, keepalive, frames) is sent to its owner's internal port and the
  owner's response, typed error envelopes included, is relayed as is (streamed: SSE chat too). A chat
  request whose `ovs://` streams all live on one other node goes there whole; one that spans nodes runs
  here, and `RemoteFrames` fetches the frames it selects from their owners (frames never travel
  through Redis). An owner that is gone (no heartbeat, or its port refuses) is the typed stream-ended
  error (404 `stream_not_found`, "its node was lost"), never a 5xx; GET and DELETE of such a stream
  answer from the shared record instead.
- **Placement**: `POST /streams` goes to `ClusterDirectory.place()` (least loaded); when that is
  another node the create is forwarded there, so the publish URL and token are that node's. A target
  that refuses (draining: 503) or cannot be reached leaves the stream here.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Annotated, Protocol

import httpx
from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livesight.api.errors import error_response
from livesight.buffer.ring import FrameWindow
from livesight.core import errors as error_tree
from livesight.core.errors import (
    ClusterUnavailable,
    FrameEvicted,
    LivesightError,
    StreamNotFound,
    StreamUnauthorized,
)
from livesight.core.frame import FrameInfo, JpegPayload
from livesight.core.records import END_REASONS
from livesight.streams.cluster import ClusterDirectory
from livesight.streams.directory import StreamDirectory
from livesight.streams.stream import Stream

FORWARDED = "livesight.forwarded"  # ASGI scope key: this request came in on the internal port
SECRET_HEADER = "x-livesight-cluster-secret"  # noqa: S105 (a header name)
LENGTHS_HEADER = "x-livesight-lengths"
_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"host", b"te", b"trailer"})
_STREAM_PATH = re.compile(r"^/(?:v1|v1beta)/streams/([^/]+)(/.*)?$")
_CREATE_PATH = re.compile(r"^/(?:v1|v1beta)/streams$")
_CHAT_PATH = re.compile(r"^/(?:v1|v1beta)/chat/completions$")
_WATCHES_PATH = re.compile(r"^/(?:v1|v1beta)/watches$")
_WATCH_PATH = re.compile(r"^/(?:v1|v1beta)/watches/([^/]+)(?:/.*)?$")
_OVS = re.compile(rb"ovs://streams/([0-9A-Fa-f-]{36})")


def lost(stream_id: str) -> StreamNotFound:
    return StreamNotFound(f"stream {stream_id} has ended (node_lost): the node that served it is gone")


class Forwarder:
    """The HTTP client to other nodes' internal ports (one connection pool for the node)."""

    def __init__(self, cluster: ClusterDirectory, secret: str, timeout_s: float) -> None:
        self.cluster = cluster
        self.secret = secret
        # Idle connections are dropped well before any node's server would close them (keep-alive
        # timeout >= 1 s), so a request never races the server's close on a stale pooled connection.
        limits = httpx.Limits(max_keepalive_connections=32, keepalive_expiry=0.8)
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=2.0), limits=limits)

    async def gone(self, stream_id: str) -> LivesightError:
        """The owner cannot be reached. When this node sees the cluster: the stream's end if the record
        has one by now (a drained node ended it; end hooks here fire), else lost (404); else 503."""
        if not self.cluster.reachable:
            return ClusterUnavailable("the cluster state is unreachable; cannot tell whether its node is alive: retry")
        await self.cluster.refresh()
        stream = self.cluster.known(stream_id)
        if stream is not None and not stream.active:
            return StreamNotFound(f"stream {stream_id} has ended ({stream.end_reason})")
        return lost(stream_id)

    @property
    def auth(self) -> dict[str, str]:
        return {SECRET_HEADER: self.secret}

    async def relay(
        self,
        base: str,
        scope: Scope,
        body: bytes,
        send: Send,
        *,
        refuse: Callable[[int], bool] = lambda status: False,
        before: Callable[[], Awaitable[None]] | None = None,
        receive: Receive | None = None,
    ) -> bool:
        """Send the request to `base`'s internal port and relay the answer; False when nothing was
        relayed (the node is unreachable, or answered a status `refuse` picks): the caller decides.
        With `receive` (the client's messages after the body), a client that leaves ends the relay
        (an endless SSE answer, a watch's events, does not outlive its client)."""
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP and k.lower() != SECRET_HEADER.encode()]
        headers.append((SECRET_HEADER.encode(), self.secret.encode()))
        raw = scope.get("raw_path")
        path = raw.decode("latin-1") if isinstance(raw, bytes) and raw else str(scope["path"])
        url = f"{base}/internal{path}"
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        request = self.client.build_request(scope["method"], url, headers=headers, content=body)
        try:
            response = await self.client.send(request, stream=True)
        except httpx.RemoteProtocolError:  # closed under us before any answer: once more where that is safe
            if not _idempotent(scope):
                return False
            try:
                response = await self.client.send(request, stream=True)
            except httpx.TransportError:
                return False
        except httpx.TransportError:
            return False
        try:
            if refuse(response.status_code):
                return False
            if before is not None:
                await before()
            out = [(k, v) for k, v in response.headers.raw if k.lower() not in _HOP]
            await send({"type": "http.response.start", "status": response.status_code, "headers": out})

            async def pump() -> None:
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})

            if receive is None:
                await pump()
            else:
                await _until_disconnect(pump(), receive)
        finally:
            await response.aclose()
        return True

    async def aclose(self) -> None:
        await self.client.aclose()


async def _until_disconnect(work: Coroutine[object, object, None], receive: Receive) -> None:
    """Run `work` until it finishes or the client disconnects (then it is cancelled)."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    pumping = asyncio.ensure_future(work)
    watching = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({pumping, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pumping, watching):
            task.cancel()
        await asyncio.gather(pumping, watching, return_exceptions=True)
    if pumping.done() and not pumping.cancelled():
        pumping.result()  # its error, if it failed


def _idempotent(scope: Scope) -> bool:
    return scope["method"] in ("GET", "HEAD", "DELETE") or str(scope["path"]).endswith("/keepalive")


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then the client's own messages (its disconnect, when it leaves)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class WatchNodes(Protocol):
    """Where each watch runs (api/cluster_watches.py `RemoteWatches`)."""

    async def node_of(self, watch_id: str) -> str | None: ...


class ForwardingMiddleware:
    """On the public port: placement for creates, forwarding to owners (see the module docstring)."""

    def __init__(self, app: ASGIApp, forwarder: Forwarder, watches: WatchNodes | None = None) -> None:
        self.app = app
        self.forwarder = forwarder
        self.watches = watches

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get(FORWARDED):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/_cluster"):
            await JSONResponse({"detail": "Not Found"}, status_code=404)(scope, receive, send)
            return
        method: str = scope["method"]
        cluster = self.forwarder.cluster
        if (match := _STREAM_PATH.match(path)) is not None:
            await self._stream_request(match[1], match[2] is None and method in ("GET", "DELETE"), scope, receive, send)
        elif method == "POST" and _CREATE_PATH.match(path):
            await self._create(scope, receive, send)
        elif self.watches is not None and (match := _WATCH_PATH.match(path)) is not None:
            await self._watch_request(await self.watches.node_of(match[1]), scope, receive, send)
        elif self.watches is not None and method == "POST" and _WATCHES_PATH.match(path):
            body = await _read_body(receive)  # runs on the owner of the first stream it names
            first = _OVS.search(body)
            node = cluster.owner_node(first[1].decode()) if first is not None else None
            await self._watch_request(node, scope, _replay(body, receive), send, body)
        elif method == "POST" and _CHAT_PATH.match(path):
            body = await _read_body(receive)
            nodes = {cluster.owner_node(sid.decode()) for sid in set(_OVS.findall(body))}
            node = nodes.pop() if len(nodes) == 1 else None
            if node is None or node == cluster.node_id:  # local, or spanning nodes: RemoteFrames serves it
                await self.app(scope, _replay(body, receive), send)
                return
            base = cluster.internal_url(node)
            if base is None or not await self.forwarder.relay(base, scope, body, send):
                sid = _OVS.findall(body)[0].decode()
                await error_response(await self.forwarder.gone(sid), path)(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _stream_request(self, sid: str, local_fallback: bool, scope: Scope, receive: Receive, send: Send) -> None:
        cluster = self.forwarder.cluster
        node = cluster.owner_node(sid)
        if node is None or node == cluster.node_id:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        base = cluster.internal_url(node)
        if base is not None and await self.forwarder.relay(base, scope, body, send):
            return
        if local_fallback:  # the shared record answers GET, and a DELETE ends it cluster-wide
            await self.app(scope, _replay(body, receive), send)
        else:
            await error_response(await self.forwarder.gone(sid), scope["path"])(scope, receive, send)

    async def _watch_request(
        self, node: str | None, scope: Scope, receive: Receive, send: Send, body: bytes | None = None
    ) -> None:
        """To the node that runs (or is to run) the watch; here when that is this node, unknown, or
        unreachable (the watch routes then answer from the shared record: api/cluster_watches.py)."""
        cluster = self.forwarder.cluster
        base = cluster.internal_url(node) if node is not None and node != cluster.node_id else None
        if base is None:
            await self.app(scope, receive, send)
            return
        if body is None:
            body = await _read_body(receive)
            receive = _replay(body, receive)
        if not await self.forwarder.relay(base, scope, body, send, receive=receive):
            await self.app(scope, receive, send)

    async def _create(self, scope: Scope, receive: Receive, send: Send) -> None:
        cluster = self.forwarder.cluster
        node = await cluster.place()
        base = cluster.internal_url(node) if node != cluster.node_id else None
        if base is None:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        placed = await self.forwarder.relay(
            base, scope, body, send, refuse=lambda status: status in (502, 503, 504), before=cluster.refresh
        )
        if not placed:  # draining or unreachable: here, then
            await self.app(scope, _replay(body, receive), send)


class InternalApp:
    """The internal port's ASGI app: the cluster secret, then the public app with the request marked."""

    def __init__(self, app: ASGIApp, secret: str, cluster: ClusterDirectory) -> None:
        self.app = app
        self.secret = secret.encode()
        self.cluster = cluster

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan runs on the public server; no websockets here
        given = dict(scope["headers"]).get(SECRET_HEADER.encode(), b"")
        if not hmac.compare_digest(given, self.secret):
            await JSONResponse({"detail": "unauthorized"}, status_code=401)(scope, receive, send)
            return
        path: str = scope["path"]
        if not path.startswith("/internal/"):
            await JSONResponse({"detail": "Not Found"}, status_code=404)(scope, receive, send)
            return
        inner = path[len("/internal") :]
        if self.cluster.draining and scope["method"] == "POST" and _CREATE_PATH.match(inner):
            refused = ClusterUnavailable("this node is draining; it takes no new streams")
            await error_response(refused, inner)(scope, receive, send)
            return
        forwarded = dict(scope, path=inner, raw_path=inner.encode())
        forwarded[FORWARDED] = True
        await self.app(forwarded, receive, send)


# --- remote frames: the owner's side ------------------------------------------------------------------


class JpegsRequest(BaseModel):
    owner: str = Field(max_length=200)
    indexes: list[int] = Field(max_length=10_000)
    label: str = Field("", max_length=400)


def _typed(exc: LivesightError, ended: Stream | None = None) -> JSONResponse:
    body: dict[str, object] = {"code": exc.code, "message": exc.message}
    if ended is not None and not ended.active:  # the asking node learns of the end from the owner
        body.update(end_reason=ended.end_reason, ended_at_ms=ended.ended_at_ms)
    return JSONResponse(body, status_code=exc.status_for_envelope())


def build_router(directory: StreamDirectory) -> APIRouter:
    """`/_cluster/...`: reached only through the internal port (the secret; the public port 404s them)."""
    router = APIRouter()

    def served(stream_id: str, owner: str) -> FrameWindow | JSONResponse:
        """The stream's window, or the typed answer (an ended stream's carries its end for the asker)."""
        try:
            stream = directory.get(stream_id, owner)
        except LivesightError as exc:
            return _typed(exc)
        if not stream.active:
            return _typed(StreamNotFound(f"stream {stream.id} has ended ({stream.end_reason})"), stream)
        window = directory.window(stream)
        if window is None:  # its claim is not renewed (Redis unreachable here): not served until it is
            return _typed(ClusterUnavailable(f"stream {stream_id} is not served by its node now; retry shortly"))
        return window

    @router.get("/_cluster/window/{stream_id}")
    async def window(stream_id: str, owner: Annotated[str, Query(max_length=200)]) -> Response:
        snap = served(stream_id, owner)
        if isinstance(snap, JSONResponse):
            return snap
        rows = [[i.index, i.timestamp_ms, i.arrived_at_ms, i.width, i.height] for i in snap.infos()]
        body = {"next_index": snap.next_index, "restart_index": snap.restart_index, "restart_ms": snap.restart_ms}
        return JSONResponse({**body, "infos": rows})

    @router.post("/_cluster/jpegs/{stream_id}")
    async def jpegs(stream_id: str, wanted: Annotated[JpegsRequest, Body()]) -> Response:
        snap = served(stream_id, wanted.owner)
        if isinstance(snap, JSONResponse):
            return snap
        try:
            for index in wanted.indexes:
                if index not in snap:
                    raise FrameEvicted(f"{wanted.label}: frame {index} was evicted while the request was resolved")
            data = await snap.jpegs(wanted.indexes, wanted.label)
        except LivesightError as exc:
            return _typed(exc)
        lengths = ",".join(str(len(d)) for d in data)
        return Response(b"".join(data), media_type="application/octet-stream", headers={LENGTHS_HEADER: lengths})

    return router


# --- remote frames: the asking side -------------------------------------------------------------------


def _by_code() -> dict[str, type[LivesightError]]:
    found: dict[str, type[LivesightError]] = {}
    for value in vars(error_tree).values():
        if isinstance(value, type) and issubclass(value, LivesightError):
            found.setdefault(value.code, value)
    return found


_ERRORS_BY_CODE = _by_code()


def _raise_from(response: httpx.Response, stream_id: str, cluster: ClusterDirectory) -> None:
    """Re-raise the owner's typed error here (same class, same message); an end it reports is shown
    here at once (end hooks run: a watch here ends `stream_ended`, not `failed`)."""
    try:
        body = response.json()
        code, message = str(body["code"]), str(body["message"])
    except (ValueError, KeyError, TypeError):
        raise ClusterUnavailable(f"a node answered {response.status_code} for its frames; retry shortly") from None
    reason = body.get("end_reason")
    if reason in END_REASONS:
        cluster.ended_elsewhere(stream_id, reason, int(body.get("ended_at_ms") or 0))
    cls = _ERRORS_BY_CODE.get(code, LivesightError)
    exc = cls.__new__(cls)
    LivesightError.__init__(exc, message)
    if isinstance(exc, StreamUnauthorized):
        exc.stream_id = stream_id
    raise exc


class RemoteFrames:
    """`resolve.request.RemoteWindows`: another node's stream as a `FrameWindow` whose reader fetches
    the selected JPEGs from that node (its snapshot of the frame infos; pixels on demand)."""

    def __init__(self, forwarder: Forwarder) -> None:
        self.forwarder = forwarder

    async def window(self, stream: Stream) -> FrameWindow | None:
        cluster = self.forwarder.cluster
        node = cluster.owner_node(stream.id)
        if node is None or node == cluster.node_id:
            return None
        base = cluster.internal_url(node)
        if base is None:
            raise await self.forwarder.gone(stream.id)
        try:
            response = await self.forwarder.client.get(
                f"{base}/internal/_cluster/window/{stream.id}",
                params={"owner": stream.owner},
                headers=self.forwarder.auth,
            )
        except httpx.TransportError:
            raise await self.forwarder.gone(stream.id) from None
        if response.status_code != 200:
            _raise_from(response, stream.id, cluster)
        data = response.json()
        infos = [FrameInfo(*row) for row in data["infos"]]
        count = len(infos)
        base_index = infos[0].index if infos else int(data["next_index"])
        return FrameWindow(
            infos,
            [JpegPayload(b"")] * count,  # the pixels stay on the owner: the reader fetches them
            [info.index for info in infos],
            count,
            0,
            count,
            base_index,
            int(data["next_index"]),
            data["restart_index"],
            data["restart_ms"],
            stream.id,
            _RemoteReader(self.forwarder, base, stream.owner),
        )


class _RemoteReader:
    def __init__(self, forwarder: Forwarder, base: str, owner: str) -> None:
        self.forwarder = forwarder
        self.base = base
        self.owner = owner

    async def jpegs(self, window: FrameWindow, indexes: Sequence[int], label: str) -> list[bytes]:
        wanted = {"owner": self.owner, "indexes": list(indexes), "label": label}
        try:
            response = await self.forwarder.client.post(
                f"{self.base}/internal/_cluster/jpegs/{window.stream_id}",
                content=json.dumps(wanted),
                headers={**self.forwarder.auth, "content-type": "application/json"},
            )
        except httpx.TransportError:
            raise await self.forwarder.gone(window.stream_id) from None
        if response.status_code != 200:
            _raise_from(response, window.stream_id, self.forwarder.cluster)
        out, at = [], 0
        data = response.content
        for length in (int(x) for x in response.headers.get(LENGTHS_HEADER, "").split(",") if x):
            out.append(data[at : at + length])
            at += length
        return out
