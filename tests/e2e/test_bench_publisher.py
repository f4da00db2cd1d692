"""The ingest benchmark's cheap publisher (bench/cheap_publisher.py) really publishes into the endpoint.

aiortc sends a pre-encoded clip through the LiveKit signalling over DTLS-SRTP/UDP (inside scripts/netns);
the server must see the codec, the size, and frames whose drawn numbers follow each other. A small clip
(320x180) keeps the one-time encode cheap.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest
import simplejpeg
from bench.cheap_publisher import publish_all
from bench.clip import ClipSpec

from livesight.core.clock import SystemClock
from livesight.ingest.pattern import read_frame_number
from tests.support.server import LiveServer, run_server

pytestmark = [pytest.mark.webrtc, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with run_server(tmp_path_factory.mktemp("bench"), clock=SystemClock()) as live:
        yield live


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_cheap_publisher_streams_numbered_frames(server: LiveServer, codec: str) -> None:
    key = server.new_key()
    spec = ClipSpec(codec=codec, width=320, height=180, fps=30, bitrate=300_000, gop=30, frames=60)
    with server.client(key) as c:
        streams = [c.post("/v1/streams").json() for _ in range(2)]  # two peer connections in one process
    result = asyncio.run(publish_all([s["publish"] for s in streams], spec, seconds=4, stop_file=None))
    for stream, sent in zip(streams, result["streams"], strict=True):
        assert sent["error"] is None
        with server.client(key) as c:
            info = c.get(f"/v1/streams/{stream['id']}").json()
            assert (info["codec"], info["width"], info["height"]) == (codec.upper(), 320, 180)
            newest = info["last_frame_index"]
            assert newest is not None and newest >= 10, info
            numbers: list[int] = []
            for index in range(newest - 5, newest + 1):
                response = c.get(f"/v1/streams/{stream['id']}/frames/{index}")
                assert response.status_code == 200, response.text
                number = read_frame_number(simplejpeg.decode_jpeg(response.content, colorspace="GRAY")[:, :, 0])
                assert number is not None, f"frame {index} does not read its own number"
                numbers.append(number)
        assert [(b - a) % spec.frames for a, b in itertools.pairwise(numbers)] == [1] * 5, numbers
        assert sent["sent"] >= newest + 1
