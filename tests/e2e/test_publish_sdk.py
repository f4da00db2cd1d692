"""The official `livekit` Python SDK publishes into the embedded endpoint; frames land in the buffer.

Runs inside a private network namespace (scripts/netns). Each test publishes a few seconds of the
numbered test pattern and reads the frames back from the buffer: order, count, indexes, timestamps.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator

import jwt
import pytest
from livekit import api, rtc

from livesight.core.clock import SystemClock
from livesight.ingest.options import IngestOptions
from tests.e2e.media import PREROLL_BASE, ReadFrame, publish_pattern, read_frames, wait_for
from tests.support.metrics import sample
from tests.support.server import LiveServer, run_server

pytestmark = [pytest.mark.webrtc, pytest.mark.timeout(90)]
FPS = 15


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    options = IngestOptions(no_frame_timeout_s=2.0)
    with run_server(
        tmp_path_factory.mktemp("sdk"), clock=SystemClock(), create_app_kwargs={"ingest_options": options}
    ) as live:
        yield live


@pytest.fixture(scope="module")
def key(server: LiveServer) -> str:
    return server.new_key()


def create_stream(server: LiveServer, key: str) -> dict[str, object]:
    with server.client(key) as c:
        response = c.post("/v1/streams")
        assert response.status_code == 201, response.text
        return dict(response.json())


def status(server: LiveServer, key: str, stream_id: str) -> dict[str, object]:
    with server.client(key) as c:
        return dict(c.get(f"/v1/streams/{stream_id}").json())


def decodes(server: LiveServer, codec: str) -> float:
    """How many received frames of `codec` this server timed decoding."""
    return sample(server.components.metrics, "livesight_ingest_frame_decode_seconds_count", codec=codec)


def check_frames(all_frames: list[ReadFrame], sent: list[int], *, min_ratio: float = 0.9) -> list[ReadFrame]:
    """Order, count, contiguous lifetime indexes, increasing stream times; returns the counted frames."""
    assert all_frames, "no frame reached the buffer"
    warmup = [f for f in all_frames if f.number is not None and f.number >= PREROLL_BASE]
    frames = all_frames[len(warmup) :]
    assert warmup == all_frames[: len(warmup)], "warm-up frames must all come first"
    assert frames, "no counted frame reached the buffer"
    numbers = [f.number for f in frames]
    assert None not in numbers, f"unreadable frame numbers: {numbers}"
    assert numbers == sorted(set(numbers)), f"frames out of order or duplicated: {numbers}"
    assert set(numbers) <= set(sent)
    assert len(frames) >= min_ratio * len(sent), f"{len(frames)} of {len(sent)} sent frames arrived"
    assert [f.index for f in frames] == list(range(frames[0].index, frames[0].index + len(frames)))
    stamps = [f.timestamp_ms for f in frames]
    assert all_frames[0].timestamp_ms == 0 if all_frames[0].index == 0 else all_frames[0].timestamp_ms > 0
    assert all(b > a for a, b in itertools.pairwise(stamps)), "stream clock not increasing"
    arrivals = [f.arrived_at_ms for f in all_frames]
    assert arrivals == sorted(arrivals)
    return frames


def test_vp8_v1_frames_arrive_in_order(server: LiveServer, key: str) -> None:
    decoded_before = decodes(server, "vp8")
    stream = create_stream(server, key)
    publish = stream["publish"]
    assert isinstance(publish, dict)
    result = asyncio.run(publish_pattern(publish["url"], publish["token"], seconds=3, fps=FPS))
    assert result.connect_error is None
    assert result.publish_error is None
    all_frames = read_frames(server, str(stream["id"]))
    frames = check_frames(all_frames, result.sent)
    # within one publication, stream time follows the media timestamps (1/15 s per frame number)
    first, last = frames[0], frames[-1]
    expected = (last.number - first.number) * 1000 / FPS  # type: ignore[operator]
    assert abs((last.timestamp_ms - first.timestamp_ms) - expected) < 150
    assert (first.width, first.height) == (640, 480)
    got = status(server, key, str(stream["id"]))
    assert got["codec"] == "VP8"
    assert got["last_frame_index"] == frames[-1].index
    assert got["first_available_frame_index"] == 0
    assert got["retained_frame_count"] == len(all_frames)
    assert got["last_error"] is None
    # frames are decoded on a timed decoder from the first one that reached the buffer on
    assert decodes(server, "vp8") - decoded_before > len(all_frames) // 2


def test_h264(server: LiveServer, key: str) -> None:
    stream = create_stream(server, key)
    publish = stream["publish"]
    assert isinstance(publish, dict)
    options = rtc.TrackPublishOptions(
        source=rtc.TrackSource.SOURCE_CAMERA,
        simulcast=False,
        video_codec=rtc.VideoCodec.H264,
        degradation_preference=rtc.DegradationPreference.MAINTAIN_RESOLUTION.value,
    )
    decoded_before = decodes(server, "h264")
    result = asyncio.run(publish_pattern(publish["url"], publish["token"], seconds=3, fps=FPS, options=options))
    assert result.connect_error is None
    assert result.publish_error is None
    all_frames = read_frames(server, str(stream["id"]))
    check_frames(all_frames, result.sent)
    assert status(server, key, str(stream["id"]))["codec"] == "H264"
    assert decodes(server, "h264") - decoded_before > len(all_frames) // 2


def test_simulcast_publisher_sends_its_top_layer(server: LiveServer, key: str) -> None:
    """The SDK default (simulcast on, three layers): the munged answer accepts the full layer only."""
    stream = create_stream(server, key)
    publish = stream["publish"]
    assert isinstance(publish, dict)
    options = rtc.TrackPublishOptions(
        source=rtc.TrackSource.SOURCE_CAMERA,
        simulcast=True,
        video_codec=rtc.VideoCodec.VP8,
        degradation_preference=rtc.DegradationPreference.MAINTAIN_RESOLUTION.value,
    )
    result = asyncio.run(
        publish_pattern(publish["url"], publish["token"], seconds=3, width=1280, height=720, fps=FPS, options=options)
    )
    assert result.connect_error is None
    assert result.publish_error is None
    frames = check_frames(read_frames(server, str(stream["id"])), result.sent)
    assert {(f.width, f.height) for f in frames} == {(1280, 720)}


def test_vp9_is_refused_loudly(server: LiveServer, key: str) -> None:
    stream = create_stream(server, key)
    publish = stream["publish"]
    assert isinstance(publish, dict)
    options = rtc.TrackPublishOptions(
        source=rtc.TrackSource.SOURCE_CAMERA, simulcast=False, video_codec=rtc.VideoCodec.VP9
    )
    result = asyncio.run(publish_pattern(publish["url"], publish["token"], seconds=2, fps=FPS, options=options))
    assert result.disconnected or result.publish_error is not None
    got = status(server, key, str(stream["id"]))
    assert "VP9" in str(got["last_error"])
    assert "VP8" in str(got["last_error"])
    assert got["publisher_connected"] is False
    assert got["last_frame_index"] is None


def test_wrong_secret_and_expired_token_get_a_clean_401(server: LiveServer, key: str) -> None:
    stream = create_stream(server, key)
    publish = stream["publish"]
    assert isinstance(publish, dict)
    sid = str(stream["id"])
    forged = (
        api.AccessToken(server.components.tokens.api_key, "not-the-secret-" * 3)
        .with_identity("publisher")
        .with_grants(api.VideoGrants(room_join=True, room=sid, can_publish=True))
        .to_jwt()
    )
    claims = jwt.decode(publish["token"], options={"verify_signature": False})
    claims["exp"] = int(time.time()) - 120
    claims["nbf"] = int(time.time()) - 600
    expired = jwt.encode(claims, server.components.tokens._secret, algorithm="HS256")
    for token in (forged, expired):
        refused_before = server.components.ingest.refused
        started = time.monotonic()
        result = asyncio.run(publish_pattern(publish["url"], token, seconds=1))
        assert "401" in str(result.connect_error), result.connect_error
        assert time.monotonic() - started < 10  # no retries with backoff
        # v1 upgrade + its validate (+ at most one more): not a retry storm
        assert server.components.ingest.refused - refused_before <= 3
    assert status(server, key, sid)["publisher_connected"] is False


def test_second_publisher_is_refused(server: LiveServer, key: str) -> None:
    stream = create_stream(server, key)
    publish = stream["publish"]
    assert isinstance(publish, dict)

    async def two() -> tuple[object, object]:
        first = asyncio.create_task(publish_pattern(publish["url"], publish["token"], seconds=3))
        await asyncio.sleep(1.5)
        second = await publish_pattern(publish["url"], publish["token"], seconds=1)
        return await first, second

    first, second = asyncio.run(two())
    assert first.connect_error is None
    error = second.connect_error
    assert "already has a connected publisher" in str(error), error


def test_delete_disconnects_the_publisher_and_frees_frames(server: LiveServer, key: str) -> None:
    stream = create_stream(server, key)
    publish = stream["publish"]
    assert isinstance(publish, dict)
    sid = str(stream["id"])

    async def publish_then_delete() -> object:
        task = asyncio.create_task(publish_pattern(publish["url"], publish["token"], seconds=6))
        await asyncio.to_thread(wait_for, lambda: status(server, key, sid)["last_frame_index"] is not None, 10)
        with server.client(key) as c:
            assert (await asyncio.to_thread(c.delete, f"/v1/streams/{sid}")).status_code == 200
        gone = await asyncio.to_thread(wait_for, lambda: sid not in server.components.ingest.sessions, 5, 0.02)
        assert gone, "the publisher session outlived its stream"
        return await task

    result = asyncio.run(publish_then_delete())
    assert result.disconnected is True
    assert server.components.registry.pool.get(sid) is None


@pytest.fixture(scope="module")
def flaky_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """v1 off (clients fall back to /rtc) and every stream's first signal connection dropped after 2 s."""
    options = IngestOptions(v1=False, drop_first_signal_after_s=2.0)
    with run_server(
        tmp_path_factory.mktemp("flaky"), clock=SystemClock(), create_app_kwargs={"ingest_options": options}
    ) as live:
        yield live


def test_v0_publisher_rejoins_after_a_drop_and_the_stream_continues(flaky_server: LiveServer) -> None:
    key = flaky_server.new_key()
    stream = create_stream(flaky_server, key)
    publish = stream["publish"]
    assert isinstance(publish, dict)
    result = asyncio.run(publish_pattern(publish["url"], publish["token"], seconds=6, fps=FPS))
    assert result.connect_error is None
    assert result.publish_error is None
    all_frames = read_frames(flaky_server, str(stream["id"]))
    # the rejoin costs some frames (resume refused, new join, new PC) but indexes, order and the
    # stream clock continue across it
    frames = check_frames(all_frames, result.sent, min_ratio=0.5)
    assert all_frames[0].index == 0
    assert flaky_server.components.ingest.joins.get(str(stream["id"])) == 2
    before = [f for f in frames if f.number is not None and f.number < 25]
    after = [f for f in frames if f.number is not None and f.number > 45]
    assert before, "frames from the first publication"
    assert after, "frames from the second publication"


def test_validate_endpoints(flaky_server: LiveServer) -> None:
    key = flaky_server.new_key()
    stream = create_stream(flaky_server, key)
    publish = stream["publish"]
    assert isinstance(publish, dict)
    with flaky_server.client() as c:
        ok = c.get("/rtc/validate", params={"access_token": publish["token"]})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "*"
        assert c.get("/rtc/validate", headers={"Authorization": f"Bearer {publish['token']}"}).status_code == 200
        bad = c.get("/rtc/validate", params={"access_token": "nope"})
        assert bad.status_code == 401
        assert bad.text
        v1 = c.get("/rtc/v1/validate", params={"access_token": publish["token"]})
        assert v1.status_code == 404
        assert "requested room does not exist" not in v1.text
        assert c.get("/rtc/validate").status_code == 401


def test_tokens_for_unknown_streams_are_refused(flaky_server: LiveServer) -> None:
    tokens = flaky_server.components.tokens
    token = tokens.publish_token("00000000-0000-4000-8000-000000000000")
    with flaky_server.client() as c:
        response = c.get("/rtc/validate", params={"access_token": token})
    assert response.status_code == 401
    assert "not active" in response.text


def test_the_publisher_sends_a_keyframe_every_keyframe_interval(server: LiveServer, key: str) -> None:
    """libwebrtc makes keyframes only when asked: the PLIs ingest sends keep GOPs ~2 s (keyframe_interval_s)."""
    stream = create_stream(server, key)
    publish = stream["publish"]
    assert isinstance(publish, dict)
    result = asyncio.run(publish_pattern(publish["url"], publish["token"], seconds=7, fps=FPS))
    assert result.connect_error is None and result.publish_error is None
    got = status(server, key, str(stream["id"]))
    interval = got["keyframe_interval_ms"]
    assert isinstance(interval, int), got
    assert 1500 <= interval <= 2600, got
    frames = check_frames(read_frames(server, str(stream["id"])), result.sent)
    assert frames[-1].number is not None
