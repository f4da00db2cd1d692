"""Viewers: `POST /v1/streams/{id}/viewer-token`, then the official SDKs watch the stream live.

Runs inside the private network namespace (scripts/netns). The publisher is the `livekit` Python SDK
sending the numbered test pattern; viewers read the numbers back from what they decode, so a test
sees the very frames the publisher sent, forwarded without re-encoding.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import av
import pytest
from livekit import rtc

from livesight.core.clock import SystemClock
from tests.e2e.media import PREROLL_BASE, Published, Watched, publish_pattern, read_frames, watch_pattern
from tests.e2e.test_publish_sdk import key, server
from tests.support.server import LiveServer, run_server
from tests.support.video import encode_pattern

pytestmark = [pytest.mark.webrtc, pytest.mark.timeout(90)]
__all__ = ["key", "server"]  # the module-scoped fixtures of test_publish_sdk.py, a server of this module's own


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


def test_a_viewer_that_joins_before_the_video_gets_it_when_it_starts(server: LiveServer, key: str) -> None:
    _, url, publish_token, view_token = new_stream(server, key)

    async def run() -> tuple[Published, Watched]:
        watcher = asyncio.ensure_future(watch_pattern(url, view_token, seconds=6))
        await asyncio.sleep(1.0)
        published = await publish_pattern(url, publish_token, seconds=3, preroll=0.5)
        return published, await watcher

    published, watched = asyncio.run(run())
    assert watched.connect_error is None, watched.connect_error
    numbers = counted(watched)
    assert len(numbers) >= 20 and numbers == sorted(numbers), watched.numbers
    assert set(numbers) <= set(published.sent)


def test_h264_is_forwarded_as_h264(server: LiveServer, key: str) -> None:
    stream_id, url, publish_token, view_token = new_stream(server, key)
    options = rtc.TrackPublishOptions(
        source=rtc.TrackSource.SOURCE_CAMERA,
        simulcast=False,
        video_codec=rtc.VideoCodec.H264,
        degradation_preference=rtc.DegradationPreference.MAINTAIN_RESOLUTION.value,
    )

    async def run() -> tuple[Published, Watched]:
        publisher = asyncio.ensure_future(publish_pattern(url, publish_token, seconds=5, options=options))
        await asyncio.sleep(1.5)
        watched = await watch_pattern(url, view_token, seconds=3)
        return await publisher, watched

    published, watched = asyncio.run(run())
    assert server.components.registry._streams[stream_id].feed.codec == "h264"
    numbers = counted(watched)
    assert len(numbers) >= 20 and numbers == sorted(numbers), watched.numbers
    assert set(numbers) <= set(published.sent) and None not in watched.numbers


def test_four_viewers_and_a_stalled_one_do_not_slow_the_publisher(server: LiveServer, key: str) -> None:
    stream_id, url, publish_token, view_token = new_stream(server, key)
    tokens = [view_token]
    with server.client(key) as c:
        tokens += [c.post(f"/v1/streams/{stream_id}/viewer-token").json()["view"]["token"] for _ in range(4)]

    async def run() -> tuple[Published, list[Watched]]:
        publisher = asyncio.ensure_future(publish_pattern(url, publish_token, seconds=7))
        await asyncio.sleep(1.5)
        viewers = [watch_pattern(url, t, seconds=5) for t in tokens[:4]]
        stalled = watch_pattern(url, tokens[4], seconds=5, stall_s=3.0)
        watched = await asyncio.gather(*viewers, stalled)
        return await publisher, list(watched)

    published, watched = asyncio.run(run())
    buffered = [f.number for f in read_frames(server, stream_id) if f.number is not None and f.number < PREROLL_BASE]
    assert len(buffered) >= 0.9 * len(published.sent), "the publisher's frames must all reach the buffer"
    for one in watched[:4]:
        numbers = counted(one)
        assert len(numbers) >= 40 and numbers == sorted(numbers), one.numbers
    slow = counted(watched[4])
    assert slow == sorted(slow) and set(slow) <= set(published.sent)  # it skipped ahead; never out of order
    viewers = server.components.ingest.viewers
    assert stream_id not in viewers, "viewers that left are forgotten"


def test_a_publish_token_sees_nothing_and_a_viewer_token_cannot_publish(server: LiveServer, key: str) -> None:
    stream_id, url, publish_token, view_token = new_stream(server, key)

    async def run() -> tuple[Published, Watched]:
        # the viewer token tries to publish: refused, nothing is buffered
        refused = await publish_pattern(url, view_token, seconds=1, preroll=0)
        # the publish token joins (nobody else publishes): it is a publisher, never sent media
        watched = await watch_pattern(url, publish_token, seconds=2)
        return refused, watched

    refused, watched = asyncio.run(run())
    assert refused.connect_error is None and refused.publish_error is not None
    assert read_frames(server, stream_id) == []
    assert watched.connect_error is None and watched.subscribed == [] and watched.numbers == []


def test_ending_the_stream_disconnects_its_viewers(server: LiveServer, key: str) -> None:
    stream_id, url, publish_token, view_token = new_stream(server, key)

    async def run() -> Watched:
        publisher = asyncio.ensure_future(publish_pattern(url, publish_token, seconds=6))
        watcher = asyncio.ensure_future(watch_pattern(url, view_token, seconds=6))
        await asyncio.sleep(2.5)
        with server.client(key) as c:
            assert c.delete(f"/v1/streams/{stream_id}").status_code == 200
        await asyncio.sleep(1.5)
        assert watcher.done() is False
        watched = await watcher
        await publisher
        return watched

    watched = asyncio.run(run())
    assert watched.disconnected and counted(watched)
    with server.client(key) as c:
        assert c.post(f"/v1/streams/{stream_id}/viewer-token").status_code == 404


@pytest.mark.parametrize(
    ("name", "codec", "forwarded"), [("clip.mp4", "libx264", "h264"), ("clip.mkv", "mpeg4", "jpeg")]
)
def test_a_pulled_source_is_viewable(tmp_path: Path, name: str, codec: str, forwarded: str) -> None:
    media = tmp_path / "media"
    media.mkdir()
    with av.open(str(media / name), "w") as container:
        options = {"preset": "ultrafast", "tune": "zerolatency"} if codec == "libx264" else {}  # no B-frames
        encode_pattern(container, codec, 200, 20, (320, 240), g="10", **options)
    with run_server(tmp_path, clock=SystemClock(), source_file_dir=media) as live:
        key = live.new_key()
        with live.client(key) as c:
            created = c.post("/v1/streams", json={"source": {"type": "file", "url": name}}).json()
            assert created["publish"] is None
            view = c.post(f"/v1/streams/{created['id']}/viewer-token").json()["view"]
        watched = asyncio.run(watch_pattern(view["url"], view["token"], seconds=4))
        assert live.components.registry._streams[created["id"]].feed.codec == forwarded
    numbers = [n for n in watched.numbers if n is not None]
    assert len(numbers) >= 30 and numbers == sorted(numbers), watched.numbers
    assert watched.sizes == {(320, 240)}
