"""Viewers: `POST /v1/streams/{id}/viewer-token`, then the official SDKs watch the stream live.

Runs inside the private network namespace (scripts/netns). The publisher is the `livekit` Python SDK
sending the numbered test pattern; viewers read the numbers back from what they decode, so a test
sees the very frames the publisher sent, forwarded without re-encoding.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from livesight.core.clock import SystemClock
from livesight.ingest.options import IngestOptions
from tests.e2e.media import PREROLL_BASE, Published, Watched, publish_pattern, read_frames, watch_pattern
from tests.support.server import LiveServer, run_server

pytestmark = [pytest.mark.webrtc, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    options = IngestOptions(no_frame_timeout_s=2.0)
    with run_server(
        tmp_path_factory.mktemp("view"), clock=SystemClock(), create_app_kwargs={"ingest_options": options}
    ) as live:
        yield live


@pytest.fixture(scope="module")
def key(server: LiveServer) -> str:
    return server.new_key()


def new_stream(server: LiveServer, key: str) -> tuple[str, str, str, str]:
    """A stream: its id, the publish URL and token, the viewer token (same URL)."""
    with server.client(key) as c:
        created = c.post("/v1/streams").json()
        view = c.post(f"/v1/streams/{created['id']}/viewer-token")
        assert view.status_code == 200, view.text
    body = view.json()["view"]
    assert body["expires_in_seconds"] == 300 and body["url"].startswith("ws")
    assert body["url"] == created["publish"]["url"]
    return created["id"], body["url"], created["publish"]["token"], body["token"]


def counted(watched: Watched) -> list[int]:
    return [n for n in watched.numbers if n is not None and n < PREROLL_BASE]


def test_a_python_sdk_viewer_sees_the_publishers_frames(server: LiveServer, key: str) -> None:
    stream_id, url, publish_token, view_token = new_stream(server, key)

    async def run() -> tuple[Published, Watched]:
        publisher = asyncio.ensure_future(publish_pattern(url, publish_token, seconds=6))
        await asyncio.sleep(1.5)
        watched = await watch_pattern(url, view_token, seconds=4)
        return await publisher, watched

    published, watched = asyncio.run(run())
    assert published.connect_error is None and published.publish_error is None
    assert watched.connect_error is None, watched.connect_error
    assert len(watched.subscribed) == 1, watched.subscribed
    numbers = counted(watched)
    assert len(numbers) >= 30, watched.numbers
    assert numbers == sorted(numbers), "frames out of order"
    assert set(numbers) <= set(published.sent)
    assert None not in watched.numbers, "a viewer frame without a readable number (decoded wrong)"
    buffered = {f.number for f in read_frames(server, stream_id)}
    assert set(numbers) <= buffered, "the viewer saw frames the buffer does not have"
    assert watched.sizes == {(640, 480)}
