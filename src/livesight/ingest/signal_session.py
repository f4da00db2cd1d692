"""What every embedded-endpoint connection does, publisher or viewer: the signalling loop.

A session reads binary `SignalRequest`s from its channel until the client leaves, goes silent for
`ping_timeout_s`, fails, or is kicked; answers pings; refreshes the client's token; and runs its
tasks until teardown. Subclasses (ingest/session.py, ingest/viewer.py) handle the media messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Protocol

from aiortc import RTCPeerConnection
from aiortc.sdp import candidate_from_sdp
from livekit.protocol import models, rtc

from livesight.core.clock import Clock
from livesight.ingest import signal
from livesight.ingest.options import IngestOptions

log = logging.getLogger(__name__)


class SignalChannel(Protocol):
    """The WebSocket as a session sees it: binary messages in and out."""

    async def send(self, data: bytes) -> None: ...

    async def receive(self) -> bytes | None:
        """The next binary message, or None once the connection is closed."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class SignalSession:
    role = "client"  # in messages: "the publisher sent nothing for 15 s"

    def __init__(
        self,
        *,
        channel: SignalChannel,
        stream_id: str,
        identity: str,
        name: str,
        options: IngestOptions,
        clock: Clock,
        mint_token: Callable[[], str],
    ) -> None:
        self.channel = channel
        self.stream_id = stream_id
        self.identity = identity
        self.name = name or identity
        self.options = options
        self.clock = clock
        self._mint_token = mint_token
        self.sid = signal.new_sid("PA_")
        # monotonic, not self.clock: staleness is a duration of real time, measured like ping_timeout_s
        # (an asyncio timeout) beside it; a FakeClock that never moves would keep a dead client fresh
        self.last_seen = time.monotonic()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._stop_reason: str | None = None  # an error to show on the stream; None for a normal leave
        self._kicked = False

    async def _join(self, *, viewer: bool = False, others: list[models.ParticipantInfo] | None = None) -> None:
        """Send the join (the first message), then keep refreshing the client's token."""
        await self._send(
            signal.join(
                room=self.stream_id,
                room_sid=signal.new_sid("RM_"),
                participant_sid=self.sid,
                identity=self.identity,
                name=self.name,
                ping_interval_s=self.options.ping_interval_s,
                ping_timeout_s=self.options.ping_timeout_s,
                now_ms=self.clock.now_ms(),
                viewer=viewer,
                others=others,
            )
        )
        self._spawn(self._refresh_tokens())

    def _fail_with(self, pc: RTCPeerConnection, message: str) -> None:
        """End the session with `message` when `pc`'s media connection fails."""

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState == "failed":
                self._finish(message)

    async def kick(self, reason: int, message: str | None = None) -> None:
        """Tell the client to go away for good (LeaveRequest DISCONNECT), then close."""
        if self._kicked:
            return
        self._kicked = True
        await self._send(signal.leave(reason))
        self._finish(message)
        await self.channel.close(1000, message or "")

    @property
    def stale(self) -> bool:
        return time.monotonic() - self.last_seen > self.options.stale_publisher_s

    def _finish(self, reason: str | None) -> None:
        if not self._stop.is_set():
            self._stop_reason = reason
            self._stop.set()

    async def _serve(self) -> None:
        stop = asyncio.create_task(self._stop.wait())
        try:
            while not self._stop.is_set():
                receive = asyncio.create_task(self.channel.receive())
                done, _ = await asyncio.wait(
                    {receive, stop}, timeout=self.options.ping_timeout_s, return_when="FIRST_COMPLETED"
                )
                if receive not in done:
                    receive.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await receive
                    if not done:
                        self._finish(f"the {self.role} sent nothing for {self.options.ping_timeout_s} s (ping timeout)")
                    return
                data = receive.result()
                if data is None:
                    self._finish(None)
                    return
                self.last_seen = time.monotonic()
                try:
                    request = signal.parse_request(data)
                except signal.SignalError as exc:
                    log.warning("stream %s: %s", self.stream_id, exc.reason)
                    continue
                await self._handle(request)
        finally:
            stop.cancel()

    async def _handle(self, request: rtc.SignalRequest) -> None:
        """Pings and leave; subclasses handle the rest first and call this for what they do not."""
        kind = request.WhichOneof("message")
        if kind == "ping_req":
            await self._send(signal.pong_response(request.ping_req.timestamp, self.clock.now_ms()))
        elif kind == "ping":
            await self._send(signal.legacy_pong(self.clock.now_ms()))
        elif kind == "leave":
            self._finish(None)
        # everything else (mute, subscription_permission, sync_state, update_*...) is safe to ignore

    async def _cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[object, object, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _send(self, response: rtc.SignalResponse) -> None:
        await self.channel.send(response.SerializeToString())

    async def _refresh_tokens(self) -> None:
        while True:
            await self._send(signal.refresh_token(self._mint_token()))
            await asyncio.sleep(self.options.refresh_token_interval_s)


async def add_ice_candidate(pc: RTCPeerConnection, trickle: rtc.TrickleRequest, stream_id: str) -> None:
    """A client's trickled candidate (`RTCIceCandidateInit` JSON) into `pc`; one we cannot use (tcp, mDNS,
    malformed) is not fatal, and an empty candidate (end of candidates) is nothing to add."""
    try:
        init = json.loads(trickle.candidateInit or "{}")
        text = str(init.get("candidate") or "")
        if not text:
            return
        candidate = candidate_from_sdp(text.split(":", 1)[1] if text.startswith("candidate:") else text)
        candidate.sdpMid = init.get("sdpMid")
        candidate.sdpMLineIndex = init.get("sdpMLineIndex")
        await pc.addIceCandidate(candidate)
    except Exception as exc:
        log.debug("stream %s: ignoring ICE candidate: %r", stream_id, exc)
