"""A publisher session against a fake WebSocket: signalling rules without any media."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from livekit.protocol import models, rtc

from livesight.core.clock import FakeClock
from livesight.ingest.options import IngestOptions
from livesight.ingest.session import PublisherSession
from tests.ingest.fakes import FakeChannel, RecordingTarget

pytestmark = pytest.mark.timeout(20)
Body = Callable[[PublisherSession, FakeChannel, RecordingTarget], Awaitable[None]]


def run_session(body: Body, **options: object) -> tuple[FakeChannel, RecordingTarget]:
    async def go() -> tuple[FakeChannel, RecordingTarget]:
        channel, target = FakeChannel(), RecordingTarget()
        session = PublisherSession(
            channel=channel,
            target=target,
            identity="publisher",
            name="",
            options=IngestOptions(**options),  # type: ignore[arg-type]
            clock=FakeClock(),
            mint_token=lambda: "refreshed-token",
        )
        runner = asyncio.create_task(session.run())
        await channel.wait_for("join")
        try:
            await body(session, channel, target)
        finally:
            await channel.close()
            await asyncio.wait_for(runner, 5)
        return channel, target

    return asyncio.run(go())


def video_track(cid: str = "cam", codec: str = "vp8") -> rtc.SignalRequest:
    return rtc.SignalRequest(
        add_track=rtc.AddTrackRequest(
            cid=cid,
            name="camera",
            type=models.TrackType.VIDEO,
            source=models.TrackSource.CAMERA,
            width=640,
            height=480,
            simulcast_codecs=[rtc.SimulcastCodec(codec=codec, cid=cid)],
        )
    )


def test_join_then_refresh_token_and_pings() -> None:
    async def body(session: PublisherSession, channel: FakeChannel, target: RecordingTarget) -> None:
        await channel.wait_for("refresh_token")
        channel.push(rtc.SignalRequest(ping_req=rtc.Ping(timestamp=1234, rtt=5)))
        pong = await channel.wait_for("pong_resp")
        assert pong.pong_resp.last_ping_timestamp == 1234
        channel.push(rtc.SignalRequest(ping=99))
        await channel.wait_for("pong")
        channel.push(rtc.SignalRequest(subscription_permission=rtc.SubscriptionPermission()))  # ignored
        channel.push(rtc.SignalRequest(leave=rtc.LeaveRequest(reason=models.DisconnectReason.CLIENT_INITIATED)))

    channel, target = run_session(body)
    assert channel.kinds()[0] == "join"
    assert channel.sent[1].refresh_token == "refreshed-token"
    assert target.connected == [("publisher", None)]
    assert target.disconnected == [None]  # a normal leave is not an error


def test_add_track_is_published_and_watchdog_reports_missing_frames() -> None:
    async def body(session: PublisherSession, channel: FakeChannel, target: RecordingTarget) -> None:
        channel.push(video_track("cam-1"))
        published = (await channel.wait_for("track_published")).track_published
        assert published.cid == "cam-1"
        assert published.track.sid.startswith("TR_")
        assert published.track.codecs[0].mime_type == "video/VP8"
        for _ in range(50):
            if target.errors:
                break
            await asyncio.sleep(0.05)

    _, target = run_session(body, no_frame_timeout_s=0.3)
    assert target.errors
    assert "no frame" in str(target.errors[0])


def test_h264_track_is_published_as_h264() -> None:
    async def body(session: PublisherSession, channel: FakeChannel, target: RecordingTarget) -> None:
        channel.push(video_track(codec="h264"))
        published = (await channel.wait_for("track_published")).track_published
        assert published.track.codecs[0].mime_type == "video/H264"

    run_session(body)


def test_vp9_track_is_refused_with_a_leave_and_a_stream_error() -> None:
    async def body(session: PublisherSession, channel: FakeChannel, target: RecordingTarget) -> None:
        channel.push(video_track(codec="vp9"))
        leave = (await channel.wait_for("leave")).leave
        assert leave.action == rtc.LeaveRequest.DISCONNECT
        assert leave.reason == models.DisconnectReason.MEDIA_FAILURE

    channel, target = run_session(body)
    assert "track_published" not in channel.kinds()
    assert "VP9" in str(target.errors[0])
    assert channel.closed is not None
    assert "VP9" in channel.closed[1]


def test_silent_publisher_is_dropped_after_the_ping_timeout() -> None:
    async def body(session: PublisherSession, channel: FakeChannel, target: RecordingTarget) -> None:
        for _ in range(60):
            if target.disconnected:
                return
            await asyncio.sleep(0.05)

    _, target = run_session(body, ping_timeout_s=1)
    assert "ping timeout" in str(target.disconnected[0])


def test_kick_sends_leave_and_closes() -> None:
    async def body(session: PublisherSession, channel: FakeChannel, target: RecordingTarget) -> None:
        await session.kick(models.DisconnectReason.ROOM_DELETED)

    channel, _ = run_session(body)
    assert channel.sent[-1].leave.reason == models.DisconnectReason.ROOM_DELETED
    assert channel.closed is not None
