"""Fakes at the ingest seams: a SignalChannel fed by the test, an IngestTarget that records."""

from __future__ import annotations

import asyncio

from livekit.protocol import rtc

from livesight.core.feed import LiveFeed
from livesight.core.frame import FrameInfo, IngestFrame


class FakeChannel:
    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.sent: list[rtc.SignalResponse] = []
        self.closed: tuple[int, str] | None = None
        self.new_message = asyncio.Event()

    def push(self, request: rtc.SignalRequest) -> None:
        self.inbox.put_nowait(request.SerializeToString())

    async def send(self, data: bytes) -> None:
        response = rtc.SignalResponse()
        response.ParseFromString(data)
        self.sent.append(response)
        self.new_message.set()

    async def receive(self) -> bytes | None:
        if self.closed:
            return None
        return await self.inbox.get()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed is None:
            self.closed = (code, reason)
            self.inbox.put_nowait(None)

    def kinds(self) -> list[str | None]:
        return [m.WhichOneof("message") for m in self.sent]

    async def wait_for(self, kind: str, within: float = 5.0) -> rtc.SignalResponse:
        async def find() -> rtc.SignalResponse:
            while True:
                for message in self.sent:
                    if message.WhichOneof("message") == kind:
                        return message
                self.new_message.clear()
                await self.new_message.wait()

        return await asyncio.wait_for(find(), within)


class RecordingTarget:
    def __init__(self, stream_id: str = "00000000-0000-4000-8000-000000000001") -> None:
        self._stream_id = stream_id
        self.active_flag = True
        self.frames: list[IngestFrame] = []
        self.errors: list[str | None] = []
        self.connected: list[tuple[str, str | None]] = []
        self.disconnected: list[str | None] = []
        self.dropped = 0
        self.feed = LiveFeed()

    @property
    def stream_id(self) -> str:
        return self._stream_id

    @property
    def active(self) -> bool:
        return self.active_flag

    def push_frame(self, frame: IngestFrame) -> None:
        self.frames.append(frame)
        info = FrameInfo(len(self.frames) - 1, int(frame.media_ms), 0, frame.width, frame.height)
        self.feed.publish(info, frame.payload)

    def frame_dropped(self) -> None:
        self.dropped += 1

    def publisher_connected(self, identity: str, *, codec: str | None = None) -> None:
        self.connected.append((identity, codec))

    def publisher_disconnected(self, reason: str | None = None) -> None:
        self.disconnected.append(reason)

    def report_error(self, message: str | None) -> None:
        self.errors.append(message)
