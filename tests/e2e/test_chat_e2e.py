"""End to end: the `livekit` SDK publishes frames that show a sign "GATE <n>" and the frame number n in
pixel blocks; questions through the `openai` SDK resolve to the expected frames (n read back from the
pixels of the frames the server reports using) and `livesight/ocr` quotes the sign.

Runs inside a private network namespace (scripts/netns), like the other WebRTC tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import simplejpeg
from livekit import rtc
from PIL import Image, ImageDraw, ImageFont

from livesight.core.clock import SystemClock
from livesight.settings import ModelConfig
from tests.support.fake_upstream import MODEL, FakeUpstream, run_fake_upstream
from tests.support.server import LiveServer, run_server

pytest.importorskip("livesight.ingest.pattern", reason="needs the ingest package (embedded LiveKit endpoint)")
pytestmark = [pytest.mark.webrtc, pytest.mark.timeout(240)]
FPS = 15


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, FakeUpstream, str, str]]:
    with run_fake_upstream() as fake:
        model = ModelConfig(id="qwen", base_url=fake.base_url, upstream_model=MODEL, profile="vllm", max_frames=64)
        with run_server(tmp_path_factory.mktemp("chat-e2e"), clock=SystemClock(), models=[model]) as server:
            key = server.new_key()
            with server.client(key) as c:
                stream = c.post("/v1/streams").json()
            sent = asyncio.run(publish_signs(stream["publish"]["url"], stream["publish"]["token"], seconds=4, fps=FPS))
            assert len(sent) >= 3 * FPS
            yield server, fake, key, stream["id"]


def sign(n: int, width: int = 640, height: int = 480) -> bytes:
    """RGBA: the pattern's frame-number blocks on top (read back with read_frame_number) and a large
    sign that reads "GATE <n>", the text livesight/ocr must quote."""
    image = Image.new("RGBA", (width, height), (70, 90, 110, 255))
    draw = ImageDraw.Draw(image)
    block = width // 40
    bits = [(n >> (15 - i)) & 1 for i in range(16)]
    for i, bit in enumerate(bits + [1 - b for b in bits]):
        shade = 255 if bit else 0
        draw.rectangle((i * block, 0, (i + 1) * block - 1, block - 1), fill=(shade, shade, shade, 255))
    draw.rectangle((60, 170, 580, 330), fill=(245, 245, 235, 255))
    draw.text((90, 200), f"GATE {n}", fill=(10, 10, 10, 255), font=ImageFont.load_default(size=90))
    return image.tobytes()


async def publish_signs(url: str, token: str, *, seconds: float, fps: float) -> list[int]:
    room = rtc.Room()
    await asyncio.wait_for(room.connect(url, token, rtc.RoomOptions(auto_subscribe=False)), 20)
    source = rtc.VideoSource(640, 480)
    track = rtc.LocalVideoTrack.create_video_track("camera", source)
    sent: list[int] = []
    try:
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA, video_codec=rtc.VideoCodec.VP8)
        await room.local_participant.publish_track(track, options)
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < seconds:
            delay = start + n / fps - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = rtc.VideoFrame(640, 480, rtc.VideoBufferType.RGBA, sign(n))
            source.capture_frame(frame, timestamp_us=int(time.time() * 1_000_000))
            sent.append(n)
            n += 1
        await asyncio.sleep(0.5)
    finally:
        await room.disconnect()
        await source.aclose()
    return sent


def _number(jpeg: bytes) -> int | None:
    from livesight.ingest.pattern import read_frame_number

    return read_frame_number(simplejpeg.decode_jpeg(jpeg, colorspace="GRAY")[:, :, 0])


def _ask(server: LiveServer, key: str, model: str, part: dict[str, Any], question: str) -> tuple[str, dict[str, Any]]:
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key=key, max_retries=0, timeout=120)
    reply = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": [part, {"type": "text", "text": question}]}],  # type: ignore[list-item, misc]
    )
    return reply.choices[0].message.content or "", (reply.model_extra or {})["overshoot"]["frames"][0]


def test_newest_frame_and_segment_resolve_to_the_published_frames(
    published: tuple[LiveServer, FakeUpstream, str, str],
) -> None:
    from tests.e2e.media import read_frames

    server, _fake, key, sid = published
    frames = read_frames(server, sid)
    numbers = {f.index: f.number for f in frames}
    newest = frames[-1]
    assert newest.number is not None

    text, used = _ask(
        server, key, "qwen", {"type": "image_url", "image_url": {"url": f"ovs://streams/{sid}?frame_index=-1"}}, "?"
    )
    assert used["frame_indexes"] == [newest.index]
    assert used["timestamps_ms"] == [newest.timestamp_ms]
    with server.client(key) as c:
        jpeg = c.get(f"/v1/streams/{sid}/frames/{newest.index}").content
    assert _number(jpeg) == newest.number
    assert json.loads(text)["image_sha256"] == [hashlib.sha256(jpeg).hexdigest()[:16]]

    url = f"ovs://streams/{sid}?start_offset_ms=-2000&max_fps=2"
    text, used = _ask(server, key, "qwen", {"type": "video_url", "video_url": {"url": url}}, "?")
    indexes = used["frame_indexes"]
    assert indexes[-1] <= newest.index
    assert len(indexes) in (4, 5)
    sent = [numbers[i] for i in indexes]
    assert all(n is not None for n in sent)
    steps = [b - a for a, b in itertools.pairwise(sent)]  # type: ignore[operator]
    assert all(FPS / 2 - 3 <= s <= FPS / 2 + 3 for s in steps), f"2 fps from {FPS} fps: pattern numbers {sent}"
    assert json.loads(text)["videos"][0]["frames"] == len(indexes)


def test_ocr_quotes_the_text_of_the_published_frame(published: tuple[LiveServer, FakeUpstream, str, str]) -> None:
    pytest.importorskip("livesight.backends.ocr")
    from tests.e2e.media import read_frames

    server, _, key, sid = published
    frames = read_frames(server, sid)
    target = frames[len(frames) // 2]
    part = {"type": "image_url", "image_url": {"url": f"ovs://streams/{sid}?frame_index={target.index}"}}
    text, used = _ask(server, key, "livesight/ocr", part, "What text is visible?")
    assert used["frame_indexes"] == [target.index]
    assert target.number is not None
    assert re.search(rf"GATE {target.number}\b", text), text
