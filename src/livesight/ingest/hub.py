"""The embedded endpoint's state: which publisher holds which stream, its viewers, and admission rules.

One connected publisher per stream, any number of viewers (ingest/viewer.py), each admitted by its
token's grant: one that can publish is a publisher, one that can only subscribe a viewer. A second
connection for a stream whose publisher is alive is refused (409, with the reason); one whose
publisher went silent (`stale_publisher_s`) replaces it, so a client that lost its network can rejoin
without waiting for the ping timeout. When a stream ends (deleted, expired, shutdown) its publisher
and viewers get a LeaveRequest and are disconnected at once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Literal

from livekit.protocol import models, rtc

from livesight.core.clock import Clock
from livesight.core.errors import IngestRefused, PublisherConflict, PublisherUnauthorized
from livesight.core.frame import IngestDirectory, IngestTarget
from livesight.ingest.options import IngestOptions
from livesight.ingest.session import PublisherSession
from livesight.ingest.signal_session import SignalChannel, SignalSession
from livesight.ingest.tokens import TokenIssuer
from livesight.ingest.viewer import ViewerSession, ViewRoom

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Admission:
    target: IngestTarget
    identity: str
    name: str
    role: Literal["publisher", "viewer"] = "publisher"


class EmbeddedIngest:
    def __init__(
        self,
        directory: IngestDirectory,
        tokens: TokenIssuer,
        clock: Clock,
        options: IngestOptions | None = None,
    ) -> None:
        self.directory = directory
        self.tokens = tokens
        self.clock = clock
        self.options = options or IngestOptions()
        self.sessions: dict[str, PublisherSession] = {}
        self.viewers: dict[str, set[ViewerSession]] = {}
        self._rooms: dict[str, ViewRoom] = {}
        self.joins: dict[str, int] = {}  # signal connections served per stream (rejoins included)
        self.refused = 0  # connections and validations refused (tests check there is no retry storm)
        self._kicks: set[asyncio.Task[None]] = set()
        directory.add_end_hook(self.on_stream_end)

    def admit(self, token: str | None, *, check_busy: bool = True) -> Admission:
        """Verify the token (signature, expiry, issuer, roomJoin, canPublish) and the stream."""
        try:
            return self._admit(token, check_busy)
        except IngestRefused:
            self.refused += 1
            raise

    def _admit(self, token: str | None, check_busy: bool) -> Admission:
        if not token:
            raise PublisherUnauthorized("missing access token (Authorization: Bearer or ?access_token=)")
        grant = self.tokens.verify(token)  # TokenRejected (a PublisherUnauthorized) if it must not connect
        target = self.directory.ingest_target(grant.room)
        if target is None:
            raise PublisherUnauthorized(f"stream {grant.room} is not active (unknown, deleted or expired)")
        if grant.role == "viewer":
            return Admission(target, grant.identity, grant.name, role="viewer")
        current = self.sessions.get(target.stream_id)
        if check_busy and current is not None and not current.stale:
            raise PublisherConflict(
                f"stream {target.stream_id} already has a connected publisher; one publisher per stream "
                "(create another stream, or stop the other publisher)",
            )
        return Admission(target, grant.identity, grant.name)

    async def serve(
        self,
        admission: Admission,
        channel: SignalChannel,
        join_request: rtc.JoinRequest | None = None,
        *,
        auto_subscribe: bool = True,
    ) -> None:
        """Run one publisher or viewer connection to its end."""
        if admission.role == "viewer":
            await self._serve_viewer(admission, channel, auto_subscribe)
            return
        stream_id = admission.target.stream_id
        previous = self.sessions.get(stream_id)
        if previous is not None:
            if not previous.stale:  # raced with another connection since admit()
                raise PublisherConflict(f"stream {stream_id} already has a connected publisher")
            log.info("replacing the silent publisher of stream %s", stream_id)
            await previous.kick(models.DisconnectReason.DUPLICATE_IDENTITY, None)
        session = PublisherSession(
            channel=channel,
            target=admission.target,
            identity=admission.identity,
            name=admission.name,
            options=self.options,
            clock=self.clock,
            mint_token=lambda: self.tokens.publish_token(stream_id),
        )
        self.sessions[stream_id] = session
        if self.options.drop_first_signal_after_s is not None and stream_id not in self.joins:
            session.drop_signal_later(self.options.drop_first_signal_after_s)
        self.joins[stream_id] = self.joins.get(stream_id, 0) + 1
        try:
            await session.run(join_request)
        finally:
            if self.sessions.get(stream_id) is session:
                del self.sessions[stream_id]

    async def _serve_viewer(self, admission: Admission, channel: SignalChannel, auto_subscribe: bool) -> None:
        target = admission.target
        stream_id = target.stream_id
        room = self._rooms.setdefault(stream_id, ViewRoom())
        session = ViewerSession(
            channel=channel,
            stream_id=stream_id,
            feed=target.feed,
            room=room,
            identity=admission.identity,
            name=admission.name,
            options=self.options,
            clock=self.clock,
            mint_token=lambda: self.tokens.viewer_token(stream_id, identity=admission.identity),
            ask_keyframe=lambda: self.request_keyframe(stream_id),
            auto_subscribe=auto_subscribe,
        )
        viewers = self.viewers.setdefault(stream_id, set())
        viewers.add(session)
        log.info("viewer %s joined stream %s (%d watching)", admission.identity, stream_id, len(viewers))
        try:
            await session.run()
        finally:
            viewers.discard(session)
            if not viewers and self.viewers.get(stream_id) is viewers:
                del self.viewers[stream_id]

    def request_keyframe(self, stream_id: str) -> None:
        """A viewer needs a keyframe: ask the stream's publisher (pulled sources cannot be asked)."""
        session = self.sessions.get(stream_id)
        if session is not None:
            session.request_keyframe()

    def on_stream_end(self, stream_id: str) -> None:
        """Registry end hook: disconnect the stream's publisher and viewers (scheduled; well within 1 s)."""
        self.joins.pop(stream_id, None)
        self._rooms.pop(stream_id, None)
        clients: list[SignalSession] = list(self.viewers.get(stream_id, ()))
        session = self.sessions.get(stream_id)
        if session is not None:
            clients.append(session)
        for client in clients:
            task = asyncio.get_running_loop().create_task(
                client.kick(models.DisconnectReason.ROOM_DELETED, None), name=f"kick-{stream_id}"
            )
            self._kicks.add(task)
            task.add_done_callback(self._kicks.discard)

    async def aclose(self) -> None:
        clients: list[SignalSession] = [v for viewers in self.viewers.values() for v in viewers]
        for client in [*self.sessions.values(), *clients]:
            await client.kick(models.DisconnectReason.SERVER_SHUTDOWN, None)
        if self._kicks:
            await asyncio.gather(*self._kicks, return_exceptions=True)
