"""`livekit_room` sources (CONTRACT §9): buffer a video track of a room on a LiveKit server you run.

livesight joins the room as a hidden, subscribe-only participant with the official `livekit` Python
SDK (`rtc.Room`, `rtc.VideoStream`; public API only), on the server's event loop, and buffers one
video track: the first video track of `participant` (any participant when unset) whose source is
`track_source` (any when unset). It subscribes to that track only (`auto_subscribe` off). When the
track is unpublished, unsubscribed or its participant leaves, it waits for the next track that fits
(the same participant republishing, or rejoining after a reconnect, or another one when none was
named) and follows it; each followed track is a new media session of the stream clock. The SDK
reconnects a dropped signalling connection itself; a room that is left for good (server gone,
participant kicked) is joined again with pull.py's retry policy, and `source_max_failures` attempts
in a row that gave no frame end the stream with `end_reason: "source_failed"`.

Frames arrive decoded (I420, the SDK converts anything else). They are encoded to JPEG at
`frame_max_side` off the loop, on this source's own encoder thread, one frame at a time: a frame
that arrives while one is being encoded waits in a one-frame slot, and a newer one replaces it (the
replaced frame is counted as dropped: `livesight_ingest_frames_dropped_total`). So a slow encoder
costs frames, never memory or loop time. The stream time of a frame is its arrival time.

Outbound policy: the server URL's host is resolved and every address checked (core/outbound.py)
before each join; a refused or unreachable server shows only the generic OPEN_FAILED, the reason is
in the log. The SDK signals through ingest/room_relay.py (each connection to the checked address;
refused ICE candidates and TURN servers removed); docs/outbound.md says what is and is not checked.
Credentials (`token`, or `api_key` + `api_secret` to mint one) are held in memory only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import av
import numpy as np
from livekit import api, rtc

from livesight.codec.jpeg import FrameEncoder
from livesight.core.errors import OutboundRefused, SourceUnsupported
from livesight.core.frame import IngestDirectory, IngestFrame, IngestTarget, JpegPayload
from livesight.core.outbound import OutboundPolicy
from livesight.core.records import SourceSpec
from livesight.core.redact import redact
from livesight.ingest.pull import OPEN_FAILED, RetryPolicy
from livesight.ingest.room_relay import SignalRelay

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 20.0
DISCONNECT_TIMEOUT_S = 5.0
SUBSCRIBE_TIMEOUT_S = 3.0  # a subscription with no track by then is asked for again (one sent mid-reconnect is lost)
TOKEN_TTL = datetime.timedelta(hours=6)  # a minted token is only read at join and by the SDK's reconnects
_SOURCES: dict[str, int] = {
    "camera": rtc.TrackSource.SOURCE_CAMERA,
    "screen_share": rtc.TrackSource.SOURCE_SCREENSHARE,
}
RoomFactory = Callable[[asyncio.AbstractEventLoop], rtc.Room]
"""Makes an unconnected `rtc.Room` (the seam unit tests fake)."""
FrameStreamFactory = Callable[[rtc.Track, asyncio.AbstractEventLoop], rtc.VideoStream]
"""Makes the frame stream of a subscribed track: an async iterator of `rtc.VideoFrameEvent` with `aclose()`."""


def sdk_room(loop: asyncio.AbstractEventLoop) -> rtc.Room:
    return rtc.Room(loop=loop)


def sdk_frames(track: rtc.Track, loop: asyncio.AbstractEventLoop) -> rtc.VideoStream:
    # capacity 2: the SDK's own queue drops its oldest frame when this loop falls behind
    return rtc.VideoStream(track, loop=loop, capacity=2, format=rtc.VideoBufferType.I420)


def check_room_source(spec: SourceSpec, allowed_hosts: frozenset[str] | None) -> None:
    """SourceUnsupported (400) when the URL or the credentials cannot make a join."""
    url = spec.url
    if not url.lower().startswith(("ws://", "wss://")):
        raise SourceUnsupported(f"a livekit_room source needs a ws:// or wss:// URL, got {redact(url)!r}")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        _ = parts.port
    except ValueError:
        raise SourceUnsupported(f"{redact(url)!r} is not a URL") from None
    if not host:
        raise SourceUnsupported("the livekit_room URL has no host")
    if parts.username is not None or parts.password is not None or parts.query:
        raise SourceUnsupported("pass the credentials as `token` or `api_key`/`api_secret`, not in the URL")
    if allowed_hosts is not None and host not in allowed_hosts:
        raise SourceUnsupported(f"host {host!r} is not in source_allowed_hosts ({', '.join(sorted(allowed_hosts))})")
    if spec.room is None:
        raise SourceUnsupported("a livekit_room source needs a room")


def join_token(spec: SourceSpec, identity: str) -> str:
    """The caller's token, or one minted from its API key: hidden, may subscribe, may not publish."""
    creds = spec.credentials
    if creds is None:
        raise SourceUnsupported("the source's credentials are not kept across a server restart")
    if creds.token is not None:
        return creds.token
    if creds.api_key is None or creds.api_secret is None or spec.room is None:
        raise SourceUnsupported("a livekit_room source needs `token`, or `api_key` and `api_secret`")
    grants = api.VideoGrants(
        room_join=True,
        room=spec.room,
        can_subscribe=True,
        can_publish=False,
        can_publish_data=False,
        hidden=True,
    )
    return (
        api.AccessToken(creds.api_key, creds.api_secret)
        .with_identity(identity)
        .with_name("livesight")
        .with_grants(grants)
        .with_ttl(TOKEN_TTL)
        .to_jwt()
    )


def to_av_frame(frame: rtc.VideoFrame) -> av.VideoFrame:
    """An SDK I420 frame as a PyAV frame (odd sizes lose their last row or column). Encoder thread."""
    if frame.type != rtc.VideoBufferType.I420:
        frame = frame.convert(rtc.VideoBufferType.I420)
    w, h = frame.width, frame.height
    cw, ch = (w + 1) // 2, (h + 1) // 2
    data = np.frombuffer(frame.data, np.uint8)
    y = data[: w * h].reshape(h, w)
    u = data[w * h : w * h + cw * ch].reshape(ch, cw)
    v = data[w * h + cw * ch : w * h + 2 * cw * ch].reshape(ch, cw)
    ew, eh = w // 2 * 2, h // 2 * 2
    if ew < 2 or eh < 2:
        raise ValueError(f"a {w}x{h} frame is too small")
    planes = (y[:eh, :ew], u[: eh // 2, : ew // 2], v[: eh // 2, : ew // 2])
    packed = np.concatenate([p.reshape(-1) for p in planes]).reshape(eh * 3 // 2, ew)
    return av.VideoFrame.from_ndarray(packed, format="yuv420p")


@dataclass
class _Followed:
    identity: str
    sid: str
    codec: str | None
    publication: rtc.RemoteTrackPublication
    reader: asyncio.Task[None] | None = None


class RoomSource:
    """One `livekit_room` stream: joins, follows its track, rejoins; runs as a task on the loop."""

    def __init__(
        self,
        target: IngestTarget,
        spec: SourceSpec,
        encoder: FrameEncoder,
        policy: OutboundPolicy,
        *,
        retry: RetryPolicy | None = None,
        on_failed: Callable[[], None] | None = None,
        room_factory: RoomFactory = sdk_room,
        frames_factory: FrameStreamFactory = sdk_frames,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        subscribe_timeout_s: float = SUBSCRIBE_TIMEOUT_S,
        relay: bool = True,
    ) -> None:
        self.target = target
        self.spec = spec
        self.encoder = encoder
        self.policy = policy
        self.retry = retry or RetryPolicy()
        self.on_failed = on_failed
        self.room_factory = room_factory
        self.frames_factory = frames_factory
        self.connect_timeout_s = connect_timeout_s
        self.subscribe_timeout_s = subscribe_timeout_s
        self.use_relay = relay
        self.relay: SignalRelay | None = None  # of the current join
        self.identity = f"livesight-{target.stream_id[:8]}"
        self.tag = f"stream {target.stream_id}"
        self.frames = 0  # stored
        self.dropped = 0  # replaced in the one-frame slot before they were encoded
        self.attempts = 0
        self.sessions = 0  # tracks followed
        self.room: rtc.Room | None = None  # the joined room, while joined
        self.followed: _Followed | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"livesight-room-{self.identity[10:]}")
        self._busy = False
        self._pending: tuple[rtc.VideoFrame, float, str] | None = None
        self._left = asyncio.Event()  # the room was left for good (the SDK's `disconnected`)
        self._announced = False  # publisher_connected sent for the current followed track
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"livesight-room-{self.identity}")

    async def stop(self) -> None:
        """Leave the room and stop (the stream ended or the server shuts down)."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- joining, with the retry policy of pulled sources ----------------------------------------------

    async def _run(self) -> None:
        failures, backoff = 0, self.retry.first_s
        while True:
            self.attempts += 1
            before = self.frames
            try:
                await self._join_and_follow()
                error = "left the room"
            except (OutboundRefused, SourceUnsupported, OSError, TimeoutError, rtc.ConnectError) as exc:
                error = redact(getattr(exc, "message", None) or str(exc) or type(exc).__name__)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("livekit_room source of %s failed", self.tag)
                error = repr(exc)
            if self.frames > before:
                failures, backoff = 0, self.retry.first_s
                log.warning("livekit_room source of %s ended: %s; joining again", self.tag, error)
                self.target.report_error("livekit_room source left the room; joining again")
                await asyncio.sleep(self.retry.first_s)
                continue
            failures += 1
            log.warning(
                "livekit_room source of %s could not join (attempt %d of %d): %s",
                self.tag, failures, self.retry.max_failures, error,
            )  # fmt: skip
            if failures >= self.retry.max_failures:
                self.target.report_error(f"{OPEN_FAILED}; gave up after {failures} attempts")
                if self.on_failed is not None:
                    self.on_failed()
                return
            self.target.report_error(f"{OPEN_FAILED}; retrying in {backoff:g} s")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.retry.max_s)

    async def _join_and_follow(self) -> None:
        parts = urlsplit(self.spec.url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme.lower() == "wss" else 80)
        address = await asyncio.to_thread(self.policy.resolve, host, port)
        log.info("livekit_room source of %s: %s resolves to %s, allowed", self.tag, host, address)
        token = join_token(self.spec, self.identity)
        loop = asyncio.get_running_loop()
        room = self.room_factory(loop)
        self._left = asyncio.Event()
        room.on("track_published", self._on_published)
        room.on("track_subscribed", self._on_subscribed)
        room.on("track_unsubscribed", self._on_unsubscribed)
        room.on("track_unpublished", self._on_unpublished)
        room.on("participant_disconnected", self._on_participant_left)
        room.on("track_subscription_failed", self._on_subscription_failed)
        room.on("reconnected", lambda *_: self._on_reconnected())
        room.on("disconnected", lambda *_: self._left.set())
        try:
            url = self.spec.url
            if self.use_relay:  # the SDK signals through the relay, which filters what the server sends
                self.relay = SignalRelay(self.policy, self.spec.url, self.tag)
                url = await self.relay.start()
            await asyncio.wait_for(
                room.connect(url, token, rtc.RoomOptions(auto_subscribe=False)), self.connect_timeout_s
            )
            self.room = room
            log.info("livekit_room source of %s joined room %r as %s", self.tag, self.spec.room, self.identity)
            self._follow_next()
            if self.followed is None:
                self.target.report_error("joined the room; waiting for a video track")
            await self._left.wait()
        finally:
            self.room = None
            self._unfollow(None)
            with contextlib.suppress(Exception):  # bounded: a stuck SDK must not hold up the stream's end
                await asyncio.wait_for(room.disconnect(), DISCONNECT_TIMEOUT_S)
            if self.relay is not None:
                await self.relay.close()
                self.relay = None

    # --- which track -----------------------------------------------------------------------------------

    def _fits(self, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> bool:
        if publication.kind != rtc.TrackKind.KIND_VIDEO:
            return False
        if self.spec.participant is not None and participant.identity != self.spec.participant:
            return False
        return self.spec.track_source is None or publication.source == _SOURCES[self.spec.track_source]

    def _follow_next(self) -> None:
        """Subscribe to the first track that fits, unless one is followed."""
        if self.followed is not None or self.room is None:
            return
        for participant in list(self.room.remote_participants.values()):
            for publication in list(participant.track_publications.values()):
                if self._fits(publication, participant):
                    self._follow(publication, participant)
                    return

    def _follow(self, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
        codec = (publication.mime_type or "").rpartition("/")[2].upper() or None
        self.followed = followed = _Followed(participant.identity, publication.sid, codec, publication)
        self._announced = False
        log.info("livekit_room source of %s follows track %s of %r", self.tag, publication.sid, participant.identity)
        track = publication.track
        if track is not None and publication.subscribed:
            self._read(track)
        else:
            self._subscribe(followed)

    def _subscribe(self, followed: _Followed) -> None:
        followed.publication.set_subscribed(True)
        asyncio.get_running_loop().call_later(self.subscribe_timeout_s, self._check_subscribed, followed)

    def _check_subscribed(self, followed: _Followed) -> None:
        """Still no track for the followed publication: ask again, or follow another if it is gone."""
        if self.followed is not followed or followed.reader is not None or self.room is None:
            return
        participant = self.room.remote_participants.get(followed.identity)
        if participant is not None and followed.sid in participant.track_publications:
            log.info("livekit_room source of %s: no track %s yet; subscribing again", self.tag, followed.sid)
            self._subscribe(followed)
            return
        self._unfollow("the followed track is gone; waiting for it to be published again")
        self._follow_next()

    def _on_reconnected(self) -> None:
        """The SDK resumed or rejoined: a subscription asked for meanwhile may be lost."""
        followed = self.followed
        if followed is not None and followed.reader is None:
            self._check_subscribed(followed)
        else:
            self._follow_next()

    def _unfollow(self, why: str | None) -> None:
        followed, self.followed = self.followed, None
        if followed is None:
            return
        if followed.reader is not None:
            followed.reader.cancel()
        self._pending = None
        self.target.publisher_disconnected(why)

    def _is_followed(self, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> bool:
        f = self.followed
        return f is not None and f.sid == publication.sid and f.identity == participant.identity

    def _on_published(self, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
        if self.followed is None and self.room is not None and self._fits(publication, participant):
            self._follow(publication, participant)

    def _on_subscribed(
        self, track: rtc.Track, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if self._is_followed(publication, participant):
            self._read(track)

    def _on_unsubscribed(
        self, track: rtc.Track, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        self._on_unpublished(publication, participant)

    def _on_unpublished(self, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
        if self._is_followed(publication, participant):
            self._unfollow("the followed track was unpublished; waiting for it to be published again")
            self._follow_next()

    def _on_subscription_failed(self, participant: rtc.RemoteParticipant, track_sid: str, error: str) -> None:
        f = self.followed
        if f is not None and f.sid == track_sid and f.identity == participant.identity:
            log.warning("livekit_room source of %s: subscribing to %s failed: %s", self.tag, track_sid, redact(error))
            self._unfollow("could not subscribe to the track; trying again")
            asyncio.get_running_loop().call_later(self.retry.first_s, self._follow_next)

    def _track_ended(self, followed: _Followed) -> None:
        """The SDK ended the followed track's frame stream (the track closed; its unpublish or
        unsubscribe event may be on the way): follow whatever fits a moment later (never a busy loop
        over a dead track)."""
        if self.followed is followed:
            followed.reader = None
            self._unfollow("the followed track ended; waiting for it to be published again")
            asyncio.get_running_loop().call_later(self.retry.first_s, self._follow_next)

    def _on_participant_left(self, participant: rtc.RemoteParticipant) -> None:
        f = self.followed
        if f is not None and f.identity == participant.identity:
            self._unfollow("the followed participant left the room; waiting for it to come back")
            self._follow_next()

    # --- frames ----------------------------------------------------------------------------------------

    def _read(self, track: rtc.Track) -> None:
        followed = self.followed
        if followed is None or followed.reader is not None:
            return
        self.sessions += 1
        session = f"room-{self.sessions}"
        followed.reader = asyncio.get_running_loop().create_task(self._frames(track, session, followed))

    async def _frames(self, track: rtc.Track, session: str, followed: _Followed) -> None:
        stream = self.frames_factory(track, asyncio.get_running_loop())
        try:
            async for event in stream:
                self.offer(event.frame, time.monotonic() * 1000, session)
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()
        self._track_ended(followed)  # not reached when cancelled (unfollowed, or the source stopped)

    def offer(self, frame: rtc.VideoFrame, media_ms: float, session: str) -> None:
        """A decoded frame arrived (on the loop): encode it now, or keep it in the slot."""
        if self._busy:
            if self._pending is not None:
                self.dropped += 1
                self.target.frame_dropped()
            self._pending = (frame, media_ms, session)
            return
        self._encode(frame, media_ms, session)

    def _encode(self, frame: rtc.VideoFrame, media_ms: float, session: str) -> None:
        self._busy = True
        try:
            future = asyncio.get_running_loop().run_in_executor(self._pool, self._jpeg, frame)
        except RuntimeError:  # the pool shut down: the source is stopping
            self._busy = False
            return
        future.add_done_callback(functools.partial(self._encoded, media_ms, session))

    def _jpeg(self, frame: rtc.VideoFrame) -> tuple[int, int, bytes]:
        encoded = self.encoder.encode(to_av_frame(frame))
        return encoded.width, encoded.height, encoded.jpeg

    def _encoded(self, media_ms: float, session: str, future: asyncio.Future[tuple[int, int, bytes]]) -> None:
        self._busy = False
        if not future.cancelled():
            exc = future.exception()
            if exc is not None:
                log.warning("livekit_room source of %s: a frame did not encode: %s", self.tag, exc)
            elif self.target.active and self.followed is not None:
                width, height, jpeg = future.result()
                if not self._announced:
                    self._announced = True
                    self.target.report_error(None)
                    identity = f"livekit_room:{self.followed.identity}"
                    self.target.publisher_connected(identity, codec=self.followed.codec)
                self.target.push_frame(IngestFrame(session, media_ms, width, height, JpegPayload(jpeg)))
                self.frames += 1
        pending, self._pending = self._pending, None
        if pending is not None:
            self._encode(*pending)


class RoomSources:
    """Starts and stops the `livekit_room` sources of a process."""

    def __init__(
        self,
        directory: IngestDirectory,
        encoder: FrameEncoder,
        policy: OutboundPolicy | None = None,
        retry: RetryPolicy | None = None,
        *,
        room_factory: RoomFactory = sdk_room,
        frames_factory: FrameStreamFactory = sdk_frames,
        relay: bool = True,
    ) -> None:
        self.relay = relay
        self.directory = directory
        self.encoder = encoder
        self.policy = policy or OutboundPolicy()
        self.retry = retry or RetryPolicy()
        self.room_factory = room_factory
        self.frames_factory = frames_factory
        self.sources: dict[str, RoomSource] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        directory.add_end_hook(self.on_stream_end)

    def start(self, stream_id: str, spec: SourceSpec, on_failed: Callable[[], None] | None = None) -> None:
        """Check the source and start joining (call on the loop). SourceUnsupported (400) when it cannot."""
        check_room_source(spec, self.policy.hosts)
        target = self.directory.ingest_target(stream_id)
        if target is None:
            raise SourceUnsupported(f"stream {stream_id} is not active")
        if spec.credentials is None:  # a stream restored after a restart: its credentials were never stored
            target.report_error("a livekit_room source's credentials are not kept across a restart: create it again")
            if on_failed is not None:
                asyncio.get_running_loop().call_soon(on_failed)
            return
        source = RoomSource(
            target,
            spec,
            self.encoder,
            self.policy,
            retry=self.retry,
            on_failed=on_failed,
            room_factory=self.room_factory,
            frames_factory=self.frames_factory,
            relay=self.relay,
        )
        self.sources[stream_id] = source
        source.start()

    def on_stream_end(self, stream_id: str) -> None:
        source = self.sources.pop(stream_id, None)
        if source is not None:  # leave the room (an end hook must not block)
            task = asyncio.get_running_loop().create_task(source.stop())
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    async def aclose(self) -> None:
        sources = list(self.sources.values())
        self.sources.clear()
        await asyncio.gather(*(s.stop() for s in sources), *self._stopping, return_exceptions=True)
