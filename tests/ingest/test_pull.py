"""Server-pulled sources: a file plays at its native rate into the buffer; sources are checked."""

from __future__ import annotations

import time
from pathlib import Path

import av
import numpy as np
import pytest
import simplejpeg

from livesight.core.clock import SystemClock
from livesight.core.errors import SourceUnsupported
from livesight.ingest.pattern import TestPattern, read_frame_number
from livesight.ingest.pull import check_source
from tests.support.server import run_server

pytestmark = pytest.mark.timeout(60)


def write_video(path: Path, frames: int = 20, fps: int = 10, size: tuple[int, int] = (320, 240)) -> None:
    width, height = size
    pattern = TestPattern(width, height)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = 2_000_000
        for n in range(frames):
            data = np.frombuffer(pattern.render(n), np.uint8).reshape(height * 3 // 2, width)
            for packet in stream.encode(av.VideoFrame.from_ndarray(data, format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.mark.parametrize(
    ("kind", "url", "ok"),
    [
        ("rtsp", "rtsp://camera.local/stream", True),
        ("rtsp", "http://camera.local/stream", False),
        ("hls", "https://example.invalid/live.m3u8", True),
        ("hls", "file:///etc/passwd", False),
        ("file", "clip.mp4", True),
        ("file", "../outside.mp4", False),
        ("file", "/etc/passwd", False),
        ("file", "missing.mp4", False),
        ("webcam", "/dev/video0", False),
    ],
)
def test_check_source(tmp_path: Path, kind: str, url: str, ok: bool) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"x")
    (tmp_path.parent / "outside.mp4").write_bytes(b"x")
    if ok:
        assert check_source(kind, url, tmp_path)
    else:
        with pytest.raises(SourceUnsupported):
            check_source(kind, url, tmp_path)


def test_file_sources_are_off_without_a_directory() -> None:
    with pytest.raises(SourceUnsupported, match="source_file_dir"):
        check_source("file", "clip.mp4", None)


def test_file_source_plays_at_native_rate_and_stops_on_delete(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    write_video(media / "clip.mp4", frames=20, fps=10)
    with run_server(tmp_path, clock=SystemClock(), source_file_dir=media) as live:
        key = live.new_key()
        with live.client(key) as c:
            created = c.post("/v1/streams", json={"source": {"type": "file", "url": "clip.mp4"}})
            assert created.status_code == 201, created.text
            sid = created.json()["id"]
            assert created.json()["publish"] is None
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                status = c.get(f"/v1/streams/{sid}").json()
                if (status["last_frame_index"] or 0) >= 15:
                    break
                time.sleep(0.1)
            assert (status["last_frame_index"] or 0) >= 15, status
            assert status["codec"] == "MPEG4"

            def frames() -> list[tuple[int, int, int, bytes]]:
                registry = live.components.registry
                window = registry.window(registry._streams[sid])
                return [
                    (i.index, i.timestamp_ms, i.arrived_at_ms, window.payload(i.index).jpeg()) for i in window.infos()
                ]

            got = live.call(frames)[:15]
            numbers = [read_frame_number(simplejpeg.decode_jpeg(j, colorspace="GRAY")[:, :, 0]) for *_, j in got]
            assert numbers == list(range(15))
            assert [ts for _, ts, _, _ in got] == [n * 100 for n in range(15)]
            # paced by the file's timestamps, not decoded as fast as possible (1.4 s of media)
            assert got[-1][2] - got[0][2] >= 1000
            assert c.delete(f"/v1/streams/{sid}").status_code == 200
        pulls = live.components.pulls
        assert sid not in pulls.sources


def test_unsupported_source_is_400_and_ends_the_stream(tmp_path: Path) -> None:
    with run_server(tmp_path) as live:
        key = live.new_key()
        with live.client(key) as c:
            response = c.post("/v1/streams", json={"source": {"type": "file", "url": "/etc/passwd"}})
            assert response.status_code == 400
            assert "source_file_dir" in response.json()["detail"]
