"""The `livekit_room` gateway against a real LiveKit-compatible server: livesight's own endpoint.

Instance A hosts a stream that the `livekit` Python SDK publishes the numbered test pattern into;
instance B creates a `livekit_room` stream pointing at A's room with a viewer token from A
(`POST /v1/streams/{id}/viewer-token`). The SDKs are the real clients on both ends: B only talks to
A through the SDK's public API. B's frames must carry the pixel numbers A's publisher drew; when A's
publisher leaves and publishes again B keeps buffering (same codec: A keeps its viewers' track) or
rejoins and follows the new track (another codec: A tells its viewers to rejoin); deleting B's
stream makes B leave A's room. Runs inside the private network namespace (scripts/netns tests/e2e/test_gateway.py).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from livekit import rtc

from livesight.core.clock import SystemClock
from livesight.ingest.options import IngestOptions
from tests.e2e.media import PREROLL_BASE, Published, ReadFrame, publish_pattern, read_frames
from tests.support.polling import wait_for
from tests.support.server import LiveServer, run_server

pytestmark = [pytest.mark.webrtc, pytest.mark.timeout(150)]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveServer]]:
    options = IngestOptions(no_frame_timeout_s=2.0)
    with (
        run_server(
            tmp_path_factory.mktemp("a"), clock=SystemClock(), create_app_kwargs={"ingest_options": options}
        ) as a,
        run_server(tmp_path_factory.mktemp("b"), clock=SystemClock(), frame_max_side=640) as b,
    ):
        yield a, b


class Publisher:
    """publish_pattern on its own thread and event loop, so the test can poll servers meanwhile."""

    def __init__(self, url: str, token: str, seconds: float, codec: int = rtc.VideoCodec.VP8) -> None:
        self.result: Published | None = None
        options = rtc.TrackPublishOptions(
            source=rtc.TrackSource.SOURCE_CAMERA,
            simulcast=False,
            video_codec=codec,
            degradation_preference=rtc.DegradationPreference.MAINTAIN_RESOLUTION.value,
        )
        self.thread = threading.Thread(target=self._run, args=(url, token, seconds, options), daemon=True)
        self.thread.start()

    def _run(self, url: str, token: str, seconds: float, options: rtc.TrackPublishOptions) -> None:
        self.result = asyncio.run(publish_pattern(url, token, seconds=seconds, fps=15, options=options))

    def join(self) -> Published:
        self.thread.join(60)
        assert self.result is not None, "the publisher did not finish"
        assert self.result.connect_error is None and self.result.publish_error is None, self.result
        return self.result


def viewer_token(a: LiveServer, key: str, stream_id: str) -> dict[str, Any]:
    if "/v1/streams/{stream_id}/viewer-token" not in a.app.openapi()["paths"]:
        pytest.skip("instance A has no POST /v1/streams/{id}/viewer-token: its endpoint cannot host a subscriber")
    with a.client(key) as c:
        r = c.post(f"/v1/streams/{stream_id}/viewer-token")
    assert r.status_code == 200, r.text
    return dict(r.json()["view"])


def republish(a: LiveServer, key: str, stream_id: str, *, seconds: float, codec: int = rtc.VideoCodec.VP8) -> Publisher:
    with a.client(key) as c:
        publish = c.post(f"/v1/streams/{stream_id}/keepalive").json()["publish"]
    return Publisher(publish["url"], publish["token"], seconds=seconds, codec=codec)


def counted(frames: list[ReadFrame]) -> list[int]:
    return [f.number for f in frames if f.number is not None and f.number < PREROLL_BASE]


def test_a_gateway_stream_buffers_the_frames_of_another_servers_room(
    pair: tuple[LiveServer, LiveServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    a, b = pair
    key_a, key_b = a.new_key(), b.new_key()
    with a.client(key_a) as c:
        created = c.post("/v1/streams").json()
    stream_a, publish = created["id"], created["publish"]
    view = viewer_token(a, key_a, stream_a)

    first = Publisher(publish["url"], publish["token"], seconds=6)
    wait_for(lambda: read_frames(a, stream_a), timeout=20, what="A's first frame")
    with b.client(key_b) as c:
        r = c.post("/v1/streams", json={"source": {"type": "livekit_room", "url": view["url"], "token": view["token"]}})
        assert r.status_code == 201, r.text
        stream_b = r.json()["id"]
        assert view["token"] not in c.get(f"/v1/streams/{stream_b}").text
        status = wait_for(
            lambda: (s := c.get(f"/v1/streams/{stream_b}").json())["publisher_connected"] and s,
            timeout=20,
            what="B follows A's track",
        )
    assert status["source"]["room"] == stream_a
    assert status["codec"] == "VP8" and status["last_error"] is None
    sent = first.join().sent

    frames_b = read_frames(b, stream_b)
    numbers_b = counted(frames_b)
    assert len(numbers_b) >= 30, [f.number for f in frames_b]
    assert None not in [f.number for f in frames_b], "a gateway frame without a readable number"
    assert numbers_b == sorted(set(numbers_b)), "gateway frames out of order or repeated"
    assert set(numbers_b) <= set(sent)
    assert set(numbers_b) <= set(counted(read_frames(a, stream_a))), "B has frames A never buffered"
    assert {(f.width, f.height) for f in frames_b} == {(640, 480)}

    # A's publisher left; it publishes again. Same codec: A's viewers keep their track, frames resume
    before = len(frames_b)
    second = republish(a, key_a, stream_a, seconds=4)
    wait_for(lambda: len(read_frames(b, stream_b)) >= before + 20, timeout=30, what="B's frames after the republish")
    resent = second.join().sent
    later = read_frames(b, stream_b)[before:]
    assert None not in [f.number for f in later]
    assert set(counted(later)) <= set(resent) | set(sent)
    assert [f.timestamp_ms for f in later] == sorted(f.timestamp_ms for f in later)

    # H264 this time: A tells its viewers to rejoin (a new track): B rejoins, follows it, a new session
    source = b.components.rooms.sources[stream_b]
    sessions, before = source.sessions, len(read_frames(b, stream_b))
    third = republish(a, key_a, stream_a, seconds=6, codec=rtc.VideoCodec.H264)
    with b.client(key_b) as c:
        wait_for(lambda: c.get(f"/v1/streams/{stream_b}").json()["codec"] == "H264", timeout=30, what="B on H264")
    wait_for(lambda: len(read_frames(b, stream_b)) >= before + 20, timeout=30, what="B's frames of the new track")
    assert source.sessions > sessions
    assert source.relay is not None and source.relay.connections >= 2  # joined and rejoined via the relay
    third.join()
    latest = read_frames(b, stream_b)[before:]
    assert None not in [f.number for f in latest]
    assert [f.timestamp_ms for f in latest] == sorted(f.timestamp_ms for f in latest)

    # B's stream ends: B leaves A's room
    room = source.room
    assert room is not None and room.isconnected()
    viewers = a.components.ingest.viewers
    assert len(viewers.get(stream_a, ())) == 1  # B, hidden, the only viewer
    with b.client(key_b) as c:
        assert c.delete(f"/v1/streams/{stream_b}").status_code == 200
    wait_for(lambda: not room.isconnected(), timeout=10, what="B left A's room")
    wait_for(lambda: not viewers.get(stream_a), timeout=10, what="A sees no viewer")
    # neither livesight nor the SDK logs the token (uvicorn's and httpx's DEBUG lines quote headers raw:
    # the server's log handler redacts every record, core/logs.py)
    leaks = [
        r.name
        for r in caplog.records
        if r.name.startswith(("livesight", "livekit")) and view["token"] in r.getMessage()
    ]
    assert leaks == []


def test_candidates_the_policy_refuses_are_dropped_by_the_relay(
    pair: tuple[LiveServer, LiveServer], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """B may reach A's signalling on loopback but not the namespace's 10.77.0.0/24, where A's media is:
    the relay drops every candidate A sends (the SDK never starts ICE checks towards them) and the join
    still works. Media may still flow: A (aiortc) checks B's candidates itself and B answers it as a
    peer-reflexive candidate, which no signalling filter can stop (docs/outbound.md)."""
    a, _ = pair
    key_a = a.new_key()
    with a.client(key_a) as c:
        created = c.post("/v1/streams").json()
    stream_a, publish = created["id"], created["publish"]
    view = viewer_token(a, key_a, stream_a)
    with run_server(tmp_path_factory.mktemp("strict"), clock=SystemClock(), outbound_allow_cidrs=["127.0.0.0/8"]) as b:
        key_b = b.new_key()
        publisher = Publisher(publish["url"], publish["token"], seconds=4)
        wait_for(lambda: read_frames(a, stream_a), timeout=20, what="A's first frame")
        with b.client(key_b) as c:
            source = {"type": "livekit_room", "url": view["url"], "token": view["token"]}
            stream_b = c.post("/v1/streams", json={"source": source}).json()["id"]
            room_source = b.components.rooms.sources[stream_b]
            wait_for(lambda: room_source.followed is not None, timeout=20, what="B subscribes to A's track")
            relay = room_source.relay
            assert relay is not None
            wait_for(lambda: relay.dropped > 0, timeout=20, what="A's candidates dropped")
            publisher.join()
