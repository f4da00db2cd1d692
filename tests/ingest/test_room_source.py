"""`livekit_room` sources against a fake at the SDK seam (tests/ingest/fake_room.py): which track is
followed, republish and rejoin, the bounded encoder, the retry policy, the outbound check, the token."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import jwt
import pytest
import simplejpeg
from livekit import rtc

from livesight.codec.jpeg import FrameEncoder, JpegImage
from livesight.core.errors import SourceUnsupported
from livesight.core.frame import JpegPayload
from livesight.core.outbound import OutboundPolicy
from livesight.core.records import RoomCredentials, SourceSpec
from livesight.ingest.pattern import read_frame_number
from livesight.ingest.pull import OPEN_FAILED, RetryPolicy
from livesight.ingest.room_source import RoomSource, check_room_source, join_token
from tests.ingest.fake_room import FakePublication, FakeRoom, FakeSdk, numbered_frame
from tests.ingest.fakes import RecordingTarget

pytestmark = pytest.mark.timeout(30)
SECRET = "s3cret-" + "x" * 40
LOOPBACK = OutboundPolicy.build(allow=["127.0.0.0/8"], resolver=lambda host, port: ["127.0.0.1"])


def spec(**kwargs: Any) -> SourceSpec:
    fields: dict[str, Any] = {"room": "lobby", "credentials": RoomCredentials(api_key="APIkey", api_secret=SECRET)}
    fields.update(kwargs)
    return SourceSpec("livekit_room", fields.pop("url", "ws://127.0.0.1:7880"), **fields)


def numbers(target: RecordingTarget) -> list[int | None]:
    out = []
    for frame in target.frames:
        assert isinstance(frame.payload, JpegPayload)
        out.append(read_frame_number(simplejpeg.decode_jpeg(frame.payload.data, colorspace="GRAY")[:, :, 0]))
    return out


async def until(predicate: Callable[[], object], within: float = 5.0) -> None:
    async def poll() -> None:
        while not predicate():  # noqa: ASYNC110 (the fake's state has no event to wait on)
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), within)


class Harness:
    def __init__(self, source_spec: SourceSpec, sdk: FakeSdk, encoder: FrameEncoder, **kwargs: Any) -> None:
        self.target = RecordingTarget()
        self.sdk = sdk
        self.failed = asyncio.Event()
        self.source = RoomSource(
            self.target,
            source_spec,
            encoder,
            kwargs.pop("policy", LOOPBACK),
            on_failed=self.failed.set,
            room_factory=sdk.room,
            frames_factory=sdk.frames,
            **kwargs,
        )

    @property
    def room(self) -> FakeRoom:
        return self.sdk.rooms[-1]

    async def joined(self) -> FakeRoom:
        self.source.start()
        await until(lambda: self.source.room is not None)
        return self.room

    async def send(self, *numbers: int) -> None:
        """Put frames on the followed track, waiting for each to be stored."""
        followed = self.source.followed
        assert followed is not None and followed.reader is not None
        track = self.sdk.streams[-1].track
        for n in numbers:
            before = len(self.target.frames)
            track.frames.put_nowait(numbered_frame(n))
            await until(lambda before=before: len(self.target.frames) > before)


@pytest.fixture
def encoder() -> FrameEncoder:
    enc = FrameEncoder(1, max_side=320, quality=90)
    yield enc
    enc.close()


async def test_minted_token_is_hidden_and_subscribe_only(encoder: FrameEncoder) -> None:
    h = Harness(spec(), FakeSdk(), encoder)
    room = await h.joined()
    assert room.connected_with is not None
    url, token, options = room.connected_with
    assert url.startswith("ws://127.0.0.1:") and url != "ws://127.0.0.1:7880"  # the signalling relay
    assert h.source.relay is not None
    assert options.auto_subscribe is False  # only the followed track is subscribed to
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_aud": False})
    assert claims["iss"] == "APIkey"
    assert claims["sub"] == h.source.identity
    video = claims["video"]
    assert video["room"] == "lobby" and video["roomJoin"] is True and video["hidden"] is True
    assert video["canSubscribe"] is True and video["canPublish"] is False and video["canPublishData"] is False
    await h.source.stop()
    assert room.disconnected


async def test_given_token_is_used_as_is(encoder: FrameEncoder) -> None:
    h = Harness(spec(credentials=RoomCredentials(token="eyJ.given.token")), FakeSdk(), encoder)
    room = await h.joined()
    assert room.connected_with is not None and room.connected_with[1] == "eyJ.given.token"
    await h.source.stop()


def test_credentials_repr_and_equality_hide_secrets() -> None:
    source = spec(credentials=RoomCredentials(token="tok-123", api_key="k", api_secret=SECRET))
    assert "tok-123" not in repr(source) and SECRET not in repr(source)
    assert source == spec(credentials=None)  # the credentials are not part of the record


@pytest.mark.parametrize(
    ("track_source", "participant", "expected"),
    [
        (None, None, "TR_screen"),  # the first video track, whoever publishes it
        ("camera", None, "TR_cam"),
        ("screen_share", None, "TR_screen"),
        (None, "bob", "TR_cam"),
        ("camera", "alice", None),  # alice shares a screen, no camera: wait
    ],
)
async def test_track_choice(
    encoder: FrameEncoder, track_source: str | None, participant: str | None, expected: str | None
) -> None:
    def setup(room: FakeRoom) -> None:
        audio = FakePublication("TR_mic", kind=rtc.TrackKind.KIND_AUDIO, source=rtc.TrackSource.SOURCE_MICROPHONE)
        screen = FakePublication("TR_screen", source=rtc.TrackSource.SOURCE_SCREENSHARE)
        room.join("alice", audio, screen)
        room.join("bob", FakePublication("TR_cam", mime_type="video/H264"))

    h = Harness(spec(track_source=track_source, participant=participant), FakeSdk(setup=setup), encoder)
    room = await h.joined()
    if expected is None:
        assert h.source.followed is None and room.subscribe_requests == []
        assert h.target.errors[-1] == "joined the room; waiting for a video track"
    else:
        await until(lambda: h.source.followed is not None and h.source.followed.reader is not None)
        assert room.subscribe_requests == [expected]  # nothing else is subscribed to
        await h.send(7)
        assert h.target.connected[-1][1] == ("H264" if expected == "TR_cam" else "VP8")
    await h.source.stop()


async def test_frames_keep_their_pixels_and_follow_a_republished_track(encoder: FrameEncoder) -> None:
    h = Harness(spec(participant="cam"), FakeSdk(), encoder)
    room = await h.joined()
    assert h.target.errors[-1] == "joined the room; waiting for a video track"
    cam = room.join("cam", FakePublication("TR_1"))
    await until(lambda: h.source.followed is not None and h.source.followed.reader is not None)
    await h.send(1, 2, 3)
    assert numbers(h.target) == [1, 2, 3]
    assert h.target.connected == [("livekit_room:cam", "VP8")]
    assert h.target.errors[-1] is None  # frames flow: the waiting message is cleared
    assert {f.session for f in h.target.frames} == {"room-1"}

    room.unpublish(cam, "TR_1")
    assert h.source.followed is None
    assert "unpublished" in str(h.target.disconnected[-1])
    await until(lambda: h.sdk.streams[-1].closed)  # the old track's frame stream is closed
    room.publish(cam, FakePublication("TR_2"))
    await until(lambda: h.source.followed is not None and h.source.followed.reader is not None)
    await h.send(4, 5)
    assert numbers(h.target) == [1, 2, 3, 4, 5]
    assert [f.session for f in h.target.frames[3:]] == ["room-2", "room-2"]  # a new media session
    assert len(h.target.connected) == 2
    await h.source.stop()
    assert room.disconnected


async def test_follows_the_participant_across_a_reconnect(encoder: FrameEncoder) -> None:
    h = Harness(spec(participant="robot"), FakeSdk(), encoder)
    room = await h.joined()
    room.join("other", FakePublication("TR_other"))  # not the named participant: never followed
    room.join("robot", FakePublication("TR_a"))
    await until(lambda: h.source.followed is not None and h.source.followed.reader is not None)
    await h.send(10)
    room.leave("robot")
    assert h.source.followed is None
    room.join("robot", FakePublication("TR_b"))
    await until(lambda: h.source.followed is not None and h.source.followed.sid == "TR_b")
    await until(lambda: h.source.followed is not None and h.source.followed.reader is not None)
    await h.send(11)
    assert numbers(h.target) == [10, 11]
    assert room.subscribe_requests == ["TR_a", "TR_b"]
    await h.source.stop()


class GatedEncoder(FrameEncoder):
    """Encodes only when the test lets it: the encoder "falls behind" for as long as the gate is shut."""

    def __init__(self) -> None:
        super().__init__(1, max_side=320, quality=90)
        self.gate = threading.Event()
        self.started = threading.Semaphore(0)

    def encode(self, frame: Any) -> JpegImage:
        self.started.release()
        self.gate.wait(10)
        return super().encode(frame)


async def test_a_slow_encoder_drops_frames_instead_of_queueing_them() -> None:
    encoder = GatedEncoder()
    h = Harness(spec(), FakeSdk(), encoder)
    try:
        room = await h.joined()
        room.join("cam", FakePublication("TR_1"))
        await until(lambda: h.source.followed is not None and h.source.followed.reader is not None)
        for n in range(6):
            h.source.offer(numbered_frame(n), float(n), "room-1")
        # frame 0 is being encoded, frame 5 waits in the slot, 1-4 were replaced and counted
        assert await asyncio.to_thread(encoder.started.acquire, True, 5)
        assert h.source.dropped == 4 and h.target.dropped == 4
        encoder.gate.set()
        await until(lambda: len(h.target.frames) == 2)
        assert numbers(h.target) == [0, 5]
        await asyncio.sleep(0.05)
        assert len(h.target.frames) == 2
    finally:
        encoder.gate.set()
        await h.source.stop()
        encoder.close()


async def test_a_server_that_refuses_the_join_fails_the_source(encoder: FrameEncoder) -> None:
    sdk = FakeSdk(connect_error="could not establish signal connection: 401 token=eyJabc.def.ghi")
    h = Harness(spec(), sdk, encoder, retry=RetryPolicy(max_failures=3, first_s=0.01, max_s=0.02))
    h.source.start()
    await asyncio.wait_for(h.failed.wait(), 5)
    assert len(sdk.rooms) == 3 and all(r.disconnected for r in sdk.rooms)
    assert h.target.errors == [
        f"{OPEN_FAILED}; retrying in 0.01 s",
        f"{OPEN_FAILED}; retrying in 0.02 s",
        f"{OPEN_FAILED}; gave up after 3 attempts",
    ]
    await h.source.stop()


async def test_a_room_left_after_frames_is_joined_again(encoder: FrameEncoder) -> None:
    def setup(room: FakeRoom) -> None:
        room.join("cam", FakePublication(f"TR_{len(sdk.rooms)}"))

    sdk = FakeSdk(setup=setup)
    h = Harness(spec(), sdk, encoder, retry=RetryPolicy(max_failures=2, first_s=0.01))
    room = await h.joined()
    await until(lambda: h.source.followed is not None and h.source.followed.reader is not None)
    await h.send(1)
    room.drop()
    await until(lambda: len(sdk.rooms) == 2 and h.source.room is not None)
    assert room.disconnected
    assert "livekit_room source left the room; joining again" in h.target.errors
    await until(lambda: h.source.followed is not None and h.source.followed.reader is not None)
    await h.send(2)
    assert numbers(h.target) == [1, 2]
    assert not h.failed.is_set()
    await h.source.stop()


async def test_the_outbound_policy_is_asked_before_the_sdk_connects(encoder: FrameEncoder) -> None:
    asked: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return ["169.254.169.254"]

    policy = OutboundPolicy.build(resolver=resolver)
    sdk = FakeSdk()
    h = Harness(spec(url="wss://lk.example.test/"), sdk, encoder, policy=policy, retry=RetryPolicy(max_failures=1))
    h.source.start()
    await asyncio.wait_for(h.failed.wait(), 5)
    assert asked == [("lk.example.test", 443)]
    assert sdk.rooms == []  # never handed to the SDK
    assert h.target.errors == [f"{OPEN_FAILED}; gave up after 1 attempts"]  # the reason is only logged


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://lk.local", "ws:// or wss://"),
        ("ws://", "no host"),
        ("ws://user:pw@lk.local", "not in the URL"),
        ("wss://lk.local/?access_token=abc", "not in the URL"),
        ("ws://elsewhere.test", "source_allowed_hosts"),
    ],
)
def test_check_room_source(url: str, message: str) -> None:
    with pytest.raises(SourceUnsupported, match=message):
        check_room_source(spec(url=url), frozenset({"lk.local"}))


def test_a_restored_source_has_no_credentials() -> None:
    with pytest.raises(SourceUnsupported, match="restart"):
        join_token(spec(credentials=None), "livesight-x")


async def test_a_track_whose_frames_end_is_followed_again(encoder: FrameEncoder) -> None:
    h = Harness(spec(), FakeSdk(), encoder, retry=RetryPolicy(first_s=0.01))
    room = await h.joined()
    cam = room.join("cam", FakePublication("TR_1"))
    await until(lambda: h.source.followed is not None and h.source.followed.reader is not None)
    await h.send(1)
    h.sdk.streams[-1].track.frames.put_nowait(None)  # the SDK ends the frame stream (EOS)
    await until(lambda: h.target.disconnected)
    assert "ended" in str(h.target.disconnected[-1])
    # the publication is still listed and subscribed: its track is read again, in a new session
    await until(lambda: len(h.sdk.streams) == 2)
    assert room.subscribe_requests == ["TR_1"]
    await until(lambda: h.source.followed is not None and h.source.followed.reader is not None)
    await h.send(2)
    assert numbers(h.target) == [1, 2] and [f.session for f in h.target.frames] == ["room-1", "room-2"]
    assert cam.track_publications["TR_1"].subscribed
    await h.source.stop()


async def test_a_failed_subscription_is_tried_again(encoder: FrameEncoder) -> None:
    h = Harness(spec(), FakeSdk(), encoder, retry=RetryPolicy(first_s=0.01))
    room = await h.joined()
    cam = room.join("cam", FakePublication("TR_1"))
    await until(lambda: h.source.followed is not None and h.source.followed.reader is not None)
    publication = cam.track_publications["TR_1"]
    publication.subscribed, publication.track = False, None  # what a failed subscription leaves
    room.emit("track_subscription_failed", cam, "TR_1", "permission denied")
    assert h.source.followed is None and "could not subscribe" in str(h.target.disconnected[-1])
    await until(lambda: len(room.subscribe_requests) == 2)
    await until(lambda: h.source.followed is not None and h.source.followed.reader is not None)
    await h.send(3)
    assert numbers(h.target) == [3]
    await h.source.stop()


async def test_a_subscription_lost_in_a_reconnect_is_asked_for_again(encoder: FrameEncoder) -> None:
    h = Harness(spec(), FakeSdk(), encoder, subscribe_timeout_s=0.05)
    room = await h.joined()
    room.lose_subscriptions = 1
    room.join("cam", FakePublication("TR_1"))
    await until(lambda: len(room.subscribe_requests) == 2)  # no track after the timeout: asked again
    await until(lambda: h.source.followed is not None and h.source.followed.reader is not None)
    await h.send(9)
    assert numbers(h.target) == [9]
    room.lose_subscriptions = 1
    room.leave("cam")
    room.join("cam", FakePublication("TR_2"))
    room.emit("reconnected")  # the SDK says it is back: the lost request is sent again at once
    assert room.subscribe_requests == ["TR_1", "TR_1", "TR_2", "TR_2"]
    await until(lambda: h.source.followed is not None and h.source.followed.reader is not None)
    await h.send(10)
    assert numbers(h.target) == [9, 10]
    await h.source.stop()
