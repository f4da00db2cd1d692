"""A fake at the `livekit` SDK seam of ingest/room_source.py: `rtc.Room` and `rtc.VideoStream`.

It implements only what the room source uses of the public API (`on`, `connect`, `disconnect`,
`remote_participants`, participants' `track_publications`, `set_subscribed`, the frame stream), and
emits the SDK's events with the SDK's argument order. Real `rtc` enums and `rtc.VideoFrame`s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from livekit import rtc

from livesight.ingest.pattern import TestPattern


@dataclass
class FakeTrack:
    sid: str
    frames: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)


@dataclass
class FakePublication:
    sid: str
    kind: int = rtc.TrackKind.KIND_VIDEO
    source: int = rtc.TrackSource.SOURCE_CAMERA
    mime_type: str = "video/VP8"
    subscribed: bool = False
    track: FakeTrack | None = None
    room: FakeRoom | None = None
    participant: FakeParticipant | None = None

    def set_subscribed(self, subscribed: bool) -> None:
        assert subscribed, "the room source never unsubscribes"
        assert self.room is not None and self.participant is not None
        self.room.subscribe_requests.append(self.sid)
        if self.room.lose_subscriptions > 0:  # asked mid-reconnect: the request never reaches the server
            self.room.lose_subscriptions -= 1
            return
        self.subscribed = True
        self.track = FakeTrack(self.sid)
        room, participant, track = self.room, self.participant, self.track
        asyncio.get_running_loop().call_soon(room.emit, "track_subscribed", track, self, participant)


@dataclass
class FakeParticipant:
    identity: str
    track_publications: dict[str, FakePublication] = field(default_factory=dict)


class FakeRoom:
    def __init__(self, *, connect_error: str | None = None) -> None:
        self.handlers: dict[str, list[Callable[..., Any]]] = {}
        self.remote_participants: dict[str, FakeParticipant] = {}
        self.connect_error = connect_error
        self.connected_with: tuple[str, str, Any] | None = None
        self.disconnected = False
        self.subscribe_requests: list[str] = []
        self.lose_subscriptions = 0

    def on(self, event: str, callback: Callable[..., Any]) -> Callable[..., Any]:
        self.handlers.setdefault(event, []).append(callback)
        return callback

    def emit(self, event: str, *args: Any) -> None:
        for callback in self.handlers.get(event, []):
            callback(*args)

    async def connect(self, url: str, token: str, options: Any) -> None:
        await asyncio.sleep(0)
        if self.connect_error is not None:
            raise rtc.ConnectError(self.connect_error)
        self.connected_with = (url, token, options)

    async def disconnect(self) -> None:
        self.disconnected = True

    # what a test does to the room

    def join(self, identity: str, *publications: FakePublication) -> FakeParticipant:
        participant = FakeParticipant(identity)
        self.remote_participants[identity] = participant
        for publication in publications:
            self.publish(participant, publication, announce=False)
        self.emit("participant_connected", participant)
        for publication in publications:
            self.emit("track_published", publication, participant)
        return participant

    def publish(self, participant: FakeParticipant, publication: FakePublication, *, announce: bool = True) -> None:
        publication.room, publication.participant = self, participant
        participant.track_publications[publication.sid] = publication
        if announce:
            self.emit("track_published", publication, participant)

    def unpublish(self, participant: FakeParticipant, sid: str) -> None:
        publication = participant.track_publications.pop(sid)
        if publication.track is not None:
            self.emit("track_unsubscribed", publication.track, publication, participant)
        self.emit("track_unpublished", publication, participant)

    def leave(self, identity: str) -> None:
        participant = self.remote_participants.pop(identity)
        for sid in list(participant.track_publications):
            self.unpublish(participant, sid)
        self.emit("participant_disconnected", participant)

    def drop(self) -> None:
        """The server closed the room for good (what the SDK reports after giving up reconnecting)."""
        self.emit("disconnected", "server shutdown")


@dataclass
class FrameEvent:
    frame: rtc.VideoFrame


class FakeFrames:
    """The frame stream of one subscribed track: frames the test puts on the track's queue."""

    def __init__(self, track: FakeTrack, log: list[FakeFrames]) -> None:
        self.track = track
        self.closed = False
        log.append(self)

    def __aiter__(self) -> FakeFrames:
        return self

    async def __anext__(self) -> FrameEvent:
        frame = await self.track.frames.get()
        if frame is None:
            raise StopAsyncIteration
        return FrameEvent(frame)

    async def aclose(self) -> None:
        self.closed = True


class FakeSdk:
    """The two factories a RoomSource takes, remembering every room and frame stream it made."""

    def __init__(self, *, connect_error: str | None = None, setup: Callable[[FakeRoom], None] | None = None) -> None:
        self.rooms: list[FakeRoom] = []
        self.streams: list[FakeFrames] = []
        self.connect_error = connect_error
        self.setup = setup

    def room(self, loop: asyncio.AbstractEventLoop) -> FakeRoom:
        room = FakeRoom(connect_error=self.connect_error)
        if self.setup is not None:
            self.setup(room)
        self.rooms.append(room)
        return room

    def frames(self, track: FakeTrack, loop: asyncio.AbstractEventLoop) -> FakeFrames:
        return FakeFrames(track, self.streams)


def numbered_frame(number: int, width: int = 320, height: int = 240) -> rtc.VideoFrame:
    """An I420 SDK frame showing the test pattern's `number`."""
    return rtc.VideoFrame(width, height, rtc.VideoBufferType.I420, TestPattern(width, height).render(number))
