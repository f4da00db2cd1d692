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
from livesight.core.frame import JpegPayload
from livesight.ingest.pattern import TestPattern, read_frame_number
from livesight.ingest.pull import check_source
from tests.support.metrics import sample
from tests.support.server import run_server
from tests.support.video import write_video

pytestmark = pytest.mark.timeout(60)


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
                    (i.index, i.timestamp_ms, i.arrived_at_ms, _jpeg(window.payload(i.index))) for i in window.infos()
                ]

            kept = len(live.call(frames))
            metrics = live.components.metrics
            # each frame's decode (PyAV) and JPEG encode are timed, pulled sources like WebRTC ones
            assert sample(metrics, "livesight_ingest_frame_decode_seconds_count", codec="mpeg4") >= kept
            assert sample(metrics, "livesight_ingest_frame_encode_seconds_count") >= kept
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


def write_hls(directory: Path, frames: int = 30, fps: int = 10, *, name: str = "live", encrypt: bool = False) -> None:
    """A VOD playlist `<name>.m3u8` with segments `<name>0.ts`...; AES-128 with key `key.bin` if `encrypt`."""
    pattern = TestPattern(320, 240)
    options = {"hls_time": "1", "hls_playlist_type": "vod"}
    if encrypt:  # the muxer writes the key where the URL says: an absolute path, made relative below
        options |= {"hls_enc": "1", "hls_enc_key": "0123456789abcdef", "hls_enc_key_url": str(directory / "key.bin")}
    with av.open(str(directory / f"{name}.m3u8"), "w", format="hls", options=options) as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for n in range(frames):
            data = np.frombuffer(pattern.render(n), np.uint8).reshape(360, 320)
            for packet in stream.encode(av.VideoFrame.from_ndarray(data, format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    if encrypt:
        playlist = directory / f"{name}.m3u8"
        playlist.write_text(playlist.read_text().replace(str(directory / "key.bin"), "key.bin"))


def test_hls_source_over_http(tmp_path: Path) -> None:
    """A network source (HLS over HTTP on loopback): frames arrive; when it ends it is reopened and
    the stream says so in last_error."""
    import functools
    import http.server
    import threading

    media = tmp_path / "hls"
    media.mkdir()
    write_hls(media)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(media))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/live.m3u8"
    try:
        with run_server(tmp_path, clock=SystemClock()) as live, live.client(live.new_key()) as c:
            created = c.post("/v1/streams", json={"source": {"type": "hls", "url": url}})
            assert created.status_code == 201, created.text
            sid = created.json()["id"]
            deadline = time.monotonic() + 20
            status = c.get(f"/v1/streams/{sid}").json()
            while time.monotonic() < deadline and not (
                status["last_error"] and (status["last_frame_index"] or 0) >= 29
            ):
                time.sleep(0.1)
                status = c.get(f"/v1/streams/{sid}").json()
            assert (status["last_frame_index"] or 0) >= 29, status
            assert "ended" in str(status["last_error"])
            assert (status["width"], status["height"]) == (320, 240)
            c.delete(f"/v1/streams/{sid}")
    finally:
        httpd.shutdown()


def _jpeg(payload: object) -> bytes:
    assert isinstance(payload, JpegPayload)
    return payload.data
