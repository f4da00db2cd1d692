"""The `livekit_room` gateway against a real LiveKit-compatible server: livesight's own endpoint.

Instance A hosts a stream that the `livekit` Python SDK publishes the numbered test pattern into;
instance B creates a `livekit_room` stream pointing at A's room with a viewer token from A
(`POST /v1/streams/{id}/viewer-token`). The SDKs are the real clients on both ends: B only talks to
A through the SDK's public API. B's frames must carry the pixel numbers A's publisher drew; when A's
publisher leaves and publishes again B follows the new track; deleting B's stream makes B leave A's
room. Runs inside the private network namespace (scripts/netns tests/e2e/test_gateway.py).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

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

    def __init__(self, url: str, token: str, seconds: float) -> None:
        self.result: Published | None = None
        self.started_at = time.monotonic()
        self.thread = threading.Thread(target=self._run, args=(url, token, seconds), daemon=True)
        self.thread.start()

    def _run(self, url: str, token: str, seconds: float) -> None:
        self.result = asyncio.run(publish_pattern(url, token, seconds=seconds, fps=15))

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


def counted(frames: list[ReadFrame]) -> list[int]:
    return [f.number for f in frames if f.number is not None and f.number < PREROLL_BASE]


def test_a_gateway_stream_buffers_the_frames_of_another_servers_room(pair: tuple[LiveServer, LiveServer]) -> None:
    a, b = pair
    key_a, key_b = a.new_key(), b.new_key()
    with a.client(key_a) as c:
        created = c.post("/v1/streams").json()
    stream_a, publish = created["id"], created["publish"]
    view = viewer_token(a, key_a, stream_a)

    first = Publisher(publish["url"], publish["token"], seconds=8)
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

    # A's publisher left; it publishes again (a new track): B follows it into a new media session
    before = len(frames_b)
    with a.client(key_a) as c:
        again = c.post(f"/v1/streams/{stream_a}/keepalive").json()["publish"]
    second = Publisher(again["url"], again["token"], seconds=5)
    wait_for(lambda: len(read_frames(b, stream_b)) >= before + 20, timeout=30, what="B's frames after the republish")
    resent = second.join().sent
    later = read_frames(b, stream_b)[before:]
    assert set(counted(later)) <= set(resent) | set(sent)
    assert [f.timestamp_ms for f in later] == sorted(f.timestamp_ms for f in later)

    # B's stream ends: B leaves A's room
    source = b.components.rooms.sources[stream_b]
    room = source.room
    assert room is not None and room.isconnected()
    with b.client(key_b) as c:
        assert c.delete(f"/v1/streams/{stream_b}").status_code == 200
    wait_for(lambda: not room.isconnected(), timeout=10, what="B left A's room")
    viewers = getattr(a.components.ingest, "viewers", None)
    if viewers is not None:
        wait_for(lambda: not viewers.get(stream_a), timeout=10, what="A sees no viewer")
