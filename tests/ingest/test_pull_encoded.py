"""Pulled sources in H264/VP8 go into the encoded store without a decode at ingest; others stay JPEG.

Each source plays the numbered test pattern, so a stored frame read back through the reader (decoded on
demand) must show the number of its place in the clip: stored frame i of the first play is picture i.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest

from livesight.codec.bitstream import nal_units
from livesight.core.clock import SystemClock
from livesight.core.errors import FrameUndecodable, NeedsDecode
from livesight.core.frame import EncodedPayload, FramePayload, JpegPayload
from livesight.ingest import pull
from livesight.ingest.pull_packets import PacketFeed
from tests.ingest.test_egress import GST_RTSP, ONLY_127_0_0_1, gst_rtsp_available
from tests.ingest.test_pull import write_hls
from tests.support.encoded import clip, number
from tests.support.polling import wait_for
from tests.support.rtsp import FakeRtspServer, rtp_packets
from tests.support.server import LiveServer, run_server
from tests.support.video import encode_pattern

pytestmark = pytest.mark.timeout(90)
ZEROLATENCY = {"preset": "ultrafast", "tune": "zerolatency", "g": "10"}  # no B-frames, an IDR every 10


@dataclass(frozen=True)
class Stored:
    index: int
    width: int
    height: int
    payload: FramePayload
    number: int | None  # the pattern number read back, None if the reader refused it (frame_undecodable)


def stored(live: LiveServer, sid: str) -> list[Stored]:
    """Every retained frame, each read through the reader on the server loop (one read per frame)."""

    async def read() -> list[Stored]:
        registry = live.components.registry
        window = registry.window(registry._streams[sid])
        out = []
        for info in window.infos():
            payload = window.payload(info.index)
            assert payload is not None
            try:
                jpeg: bytes | None = (await window.jpegs([info.index], "test"))[0]
            except FrameUndecodable:
                jpeg = None
            out.append(Stored(info.index, info.width, info.height, payload, None if jpeg is None else number(jpeg)))
        return out

    result: list[Stored] = live.call(read)
    return result


def pull_until(live: LiveServer, kind: str, url: str, frames: int, timeout: float = 30) -> tuple[Any, str, Any]:
    c = live.client(live.new_key())
    created = c.post("/v1/streams", json={"source": {"type": kind, "url": url}})
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    status = wait_for(
        lambda: ((s := c.get(f"/v1/streams/{sid}").json())["last_frame_index"] or -1) >= frames - 1 and s,
        timeout,
        what=f"{frames} frames",
    )
    return c, sid, status


def paths(caplog: Any) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "livesight.ingest.pull"]


def write(path: Path, codec: str, frames: int, **options: Any) -> Path:
    with av.open(str(path), "w") as container:
        encode_pattern(container, codec, frames, 20, (320, 240), **options)
    return path


@pytest.fixture
def media(tmp_path: Path) -> Path:
    directory = tmp_path / "media"
    directory.mkdir()
    return directory


@pytest.mark.parametrize(
    ("name", "codec", "options", "shown"),
    [("clip.mp4", "libx264", ZEROLATENCY, "H264"), ("clip.webm", "libvpx", {"g": "10"}, "VP8")],
)
def test_h264_mp4_and_vp8_webm_files_are_stored_encoded(
    tmp_path: Path, media: Path, caplog: Any, name: str, codec: str, options: dict[str, str], shown: str
) -> None:
    caplog.set_level(logging.INFO, logger="livesight.ingest.pull")
    write(media / name, codec, 30, **options)
    with run_server(tmp_path, clock=SystemClock(), source_file_dir=media, frame_max_side=160) as live:
        c, sid, status = pull_until(live, "file", name, 30)
        assert status["codec"] == shown
        frames = stored(live, sid)[:30]
        assert [type(f.payload) for f in frames] == [EncodedPayload] * 30
        payloads = [f.payload for f in frames if isinstance(f.payload, EncodedPayload)]
        assert {p.codec for p in payloads} == {shown.lower()}
        assert [i for i, p in enumerate(payloads) if p.keyframe] == [0, 10, 20]
        if shown == "H264":  # Annex-B, the SPS/PPS in front of each IDR (MP4 keeps them out of band)
            assert all(p.data.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")) for p in payloads)
        assert not any(p.damaged for p in payloads)
        assert {(f.width, f.height) for f in frames} == {(160, 120)}  # capped to frame_max_side, like WebRTC
        assert [f.number for f in frames] == list(range(30))
        c.close()
    assert any("kept encoded" in line and shown in line for line in paths(caplog)), paths(caplog)


def test_b_frame_h264_and_mpeg4_files_are_decoded_to_jpeg(tmp_path: Path, media: Path, caplog: Any) -> None:
    """Frames that are not one picture per packet in display order keep the decode + JPEG path."""
    caplog.set_level(logging.INFO, logger="livesight.ingest.pull")
    write(media / "bframes.mp4", "libx264", 30, preset="medium")  # 3 B-frames
    write(media / "mpeg4.mp4", "mpeg4", 30, bit_rate=2_000_000)
    with run_server(tmp_path, clock=SystemClock(), source_file_dir=media) as live:
        for name, shown in (("bframes.mp4", "H264"), ("mpeg4.mp4", "MPEG4")):
            c, sid, status = pull_until(live, "file", name, 30)
            assert status["codec"] == shown
            frames = stored(live, sid)[:30]
            assert all(isinstance(f.payload, JpegPayload) for f in frames)
            assert [f.number for f in frames] == list(range(30))
            c.close()
    lines = paths(caplog)
    assert any("H264 decoded to JPEG" in line and "B-frames" in line for line in lines), lines
    assert any("MPEG4 decoded to JPEG" in line for line in lines), lines


def test_reordering_seen_only_in_the_packets_reopens_the_source_in_the_jpeg_path(
    tmp_path: Path, media: Path, caplog: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source whose probe saw no B-frames (a live source's first frames may have none) but whose packets
    are reordered: caught before any reordered packet is stored, reopened decoded to JPEG, reads right."""
    caplog.set_level(logging.INFO, logger="livesight.ingest.pull")
    write(media / "bframes.mp4", "libx264", 30, preset="medium")
    monkeypatch.setattr(pull, "encoded_codec", lambda stream: ("h264", "the probe saw no B-frames"))
    with run_server(tmp_path, clock=SystemClock(), source_file_dir=media) as live:
        c, sid, _ = pull_until(live, "file", "bframes.mp4", 30)
        frames = stored(live, sid)
        assert all(isinstance(f.payload, JpegPayload) for f in frames)
        assert [f.number for f in frames[:30]] == list(range(30))
        c.close()
    assert any("reordered" in line and "reopening it decoded to JPEG" in line for line in paths(caplog)), paths(caplog)


def test_corrupt_packet_marks_the_rest_of_its_gop_damaged(tmp_path: Path, media: Path) -> None:
    """An MPEG-TS file with one TS packet cut out of a frame in the middle of the GOP 10-19: FFmpeg flags
    that frame corrupt (continuity check); it and the rest of its GOP read as frame_undecodable, every
    other frame reads right."""
    good = write(tmp_path / "clip.ts", "libx264", 30, **ZEROLATENCY)
    with av.open(str(good)) as container:
        pos = [p.pos for p in container.demux(container.streams.video[0]) if p.size][13]
    assert pos is not None
    data = good.read_bytes()
    cut = pos // 188 + 1
    (media / "cut.ts").write_bytes(data[: cut * 188] + data[(cut + 1) * 188 :])
    with av.open(str(media / "cut.ts")) as container:
        flagged = [i for i, p in enumerate(container.demux(container.streams.video[0])) if p.is_corrupt]
    assert len(flagged) == 1 and 10 < flagged[0] < 19, flagged  # what FFmpeg says, read the same way
    with run_server(tmp_path, clock=SystemClock(), source_file_dir=media) as live:
        c, sid, _ = pull_until(live, "file", "cut.ts", 30)
        frames = stored(live, sid)[:30]
        damaged = [f.index for f in frames if isinstance(f.payload, EncodedPayload) and f.payload.damaged]
        assert damaged == list(range(flagged[0], 20))
        assert [f.number for f in frames] == [None if i in damaged else i for i in range(30)]
        c.close()


def test_hls_is_stored_encoded(tmp_path: Path) -> None:
    """MPEG-TS segments over HTTP (Annex-B already, SPS in band)."""
    import functools
    import http.server
    import threading

    hls = tmp_path / "hls"
    hls.mkdir()
    write_hls(hls, frames=30)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(hls))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with run_server(tmp_path, clock=SystemClock(), **ONLY_127_0_0_1) as live:
            url = f"http://127.0.0.1:{httpd.server_address[1]}/live.m3u8"
            c, sid, status = pull_until(live, "hls", url, 30)
            assert status["codec"] == "H264"
            frames = stored(live, sid)[:30]
            assert all(isinstance(f.payload, EncodedPayload) and f.payload.codec == "h264" for f in frames)
            assert [f.number for f in frames] == list(range(30))
            c.close()
    finally:
        httpd.shutdown()


def test_rtsp_is_stored_encoded(tmp_path: Path) -> None:
    """The test pattern over RTSP (FFmpeg's RTP packetizer, interleaved in the RTSP session), through the relay."""
    with (
        FakeRtspServer(packets=rtp_packets(frames=20)) as camera,
        run_server(tmp_path, clock=SystemClock(), **ONLY_127_0_0_1) as live,
    ):
        c, sid, _ = pull_until(live, "rtsp", camera.url, 20)
        frames = stored(live, sid)[:20]
        assert all(isinstance(f.payload, EncodedPayload) and f.payload.codec == "h264" for f in frames)
        assert [f.number for f in frames] == list(range(20))
        c.close()


@pytest.fixture
def gst_rtsp() -> Iterator[int]:
    if not gst_rtsp_available():
        pytest.skip("needs Debian's python3-gi and gir1.2-gst-rtsp-server-1.0 (scripts/setup-media --browser)")
    server = subprocess.Popen(
        ["/usr/bin/python3", str(GST_RTSP), "127.0.0.1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        yield int(server.stdout.readline())
    finally:
        try:
            server.communicate(timeout=10)  # closing its stdin stops it
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_a_real_rtsp_server_is_stored_encoded(tmp_path: Path, gst_rtsp: int) -> None:
    """gst-rtsp-server (x264enc, its own SDP): frames are kept as H264 and decode on read."""
    with run_server(tmp_path, clock=SystemClock(), **ONLY_127_0_0_1) as live:
        c, sid, status = pull_until(live, "rtsp", f"rtsp://127.0.0.1:{gst_rtsp}/live", 12)
        assert (status["width"], status["height"], status["codec"]) == (320, 240, "H264")
        frames = stored(live, sid)
        assert all(isinstance(f.payload, EncodedPayload) and f.payload.codec == "h264" for f in frames)
        first = frames[0].payload
        assert isinstance(first, EncodedPayload) and first.keyframe  # frames before the first keyframe are dropped
        c.close()


# --- the packet rules, on real encoded frames -----------------------------------------------------------


def packets(codec: str, count: int, *, gop: int = 10, ms: float = 100.0) -> list[av.Packet]:
    out = []
    for i, data in enumerate(clip(codec, count, gop=gop)):
        packet = av.Packet(data)
        packet.pts, packet.dts, packet.time_base = round(i * ms), round(i * ms), Fraction(1, 1000)
        out.append(packet)
    return out


def offer_all(feed: PacketFeed, items: list[av.Packet]) -> list[EncodedPayload]:
    return [f.payload for p in items for f in feed.offer(p)]


def test_frames_before_the_first_keyframe_are_dropped_and_counted() -> None:
    feed = PacketFeed("vp8", 1280, detect_gaps=False)
    kept = offer_all(feed, packets("vp8", 25)[5:])
    assert feed.dropped == 5
    assert [p.keyframe for p in kept][:2] == [True, False] and len(kept) == 15


def test_a_gap_on_a_network_source_damages_the_rest_of_the_gop() -> None:
    items = packets("h264", 30)
    for p in items[13:]:
        assert p.pts is not None
        p.pts = p.dts = p.pts + 2000  # 2 s of data missing before frame 13
    for detect, expected in ((True, list(range(13, 20))), (False, [])):
        kept = offer_all(PacketFeed("h264", 1280, detect_gaps=detect), items)
        assert [i for i, p in enumerate(kept) if p.damaged] == expected


def test_reordered_or_hidden_frames_need_the_jpeg_path() -> None:
    items = packets("h264", 12)
    items[5].pts = 350  # before frame 4's 400: decode order is not display order
    with pytest.raises(NeedsDecode, match="pts"):
        offer_all(PacketFeed("h264", 1280, detect_gaps=False), items)
    items = packets("vp8", 12)
    hidden = bytearray(bytes(items[3]))
    hidden[0] &= ~0x10  # show_frame 0: an alt-ref frame, no picture of its own
    items[3] = av.Packet(bytes(hidden))
    with pytest.raises(NeedsDecode, match="hidden"):
        offer_all(PacketFeed("vp8", 1280, detect_gaps=False), items)


def test_an_idr_without_its_sps_gets_the_stream_parameter_sets() -> None:
    """RTSP may send the SPS/PPS only in the SDP (FFmpeg's extradata): they go in front of each IDR."""
    items = packets("h264", 12)
    units = nal_units(bytes(items[0]))
    params = b"".join(b"\x00\x00\x00\x01" + u for u in units if u[0] & 0x1F in (7, 8))
    items[0] = av.Packet(b"".join(b"\x00\x00\x00\x01" + u for u in units if u[0] & 0x1F not in (7, 8)))
    feed = PacketFeed("h264", 1280, detect_gaps=False)
    assert len(offer_all(feed, list(items))) == 2 and feed.dropped == 10  # no size until the IDR at frame 10
    kept = offer_all(PacketFeed("h264", 1280, detect_gaps=False, params=params), items)
    assert kept[0].keyframe and kept[0].data.startswith(params) and len(kept) == 12


def test_parameter_sets_in_a_packet_of_their_own_ride_with_the_next_picture() -> None:
    """A packet without a slice (SPS/PPS, SEI) is no picture: it is stored in front of the next one."""
    items = packets("h264", 12)
    units = nal_units(bytes(items[0]))
    head = av.Packet(b"".join(b"\x00\x00\x00\x01" + u for u in units if u[0] & 0x1F not in (1, 5)))
    rest = av.Packet(b"".join(b"\x00\x00\x00\x01" + u for u in units if u[0] & 0x1F in (1, 5)))
    for packet in (head, rest):
        packet.pts, packet.dts, packet.time_base = 0, 0, Fraction(1, 1000)
    kept = offer_all(PacketFeed("h264", 1280, detect_gaps=False), [head, rest, *items[1:]])
    assert len(kept) == 12 and kept[0].keyframe and kept[0].data == bytes(head) + bytes(rest)
