"""A tiny RTSP server for tests (loopback or a namespace address): real H.264 over RTP interleaved in
the RTSP TCP session (what livesight asks for: rtsp_transport=tcp), or a 3xx redirect to DESCRIBE.

The video is the test pattern encoded with libx264 and packetized by FFmpeg's own rtp muxer, so
what the client decodes is real RTP, not a fake of it. Every accepted connection and request line is
recorded (`connections`, `requests`), which is what "the refused address was never connected" reads.
"""

from __future__ import annotations

import io
import socket
import threading
from dataclasses import dataclass, field

import av

from tests.support.video import encode_pattern

SDP = (
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=livesight test\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
    "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=control:trackID=0\r\n"
)


class _Sink(io.RawIOBase):
    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.packets.append(bytes(data))  # the rtp muxer flushes once per packet
        return len(data)


def rtp_packets(frames: int = 30, fps: int = 10, size: tuple[int, int] = (320, 240)) -> list[bytes]:
    """RTP (and RTCP) packets of `frames` test-pattern frames, H.264 with in-band SPS/PPS."""
    sink = _Sink()
    with av.open(sink, "w", format="rtp", options={"packetsize": "1200"}) as container:
        encode_pattern(container, "libx264", frames, fps, size, preset="ultrafast", tune="zerolatency")
    return sink.packets


@dataclass
class FakeRtspServer:
    host: str = "127.0.0.1"
    redirect_to: str | None = None
    """Answer DESCRIBE with `302 Moved Temporarily` and this Location instead of an SDP."""
    packets: list[bytes] = field(default_factory=list)
    connections: list[tuple[str, int]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((self.host, 0))
        self.sock.listen()
        self.port: int = self.sock.getsockname()[1]
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"rtsp://{host}:{self.port}/live"

    def close(self) -> None:
        self.closed.set()
        self.sock.close()

    def __enter__(self) -> FakeRtspServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, address = self.sock.accept()
            except OSError:
                return
            self.connections.append(address[:2])
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as reader:
            while not self.closed.is_set():
                lines = []
                while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
                    lines.append(line.decode("latin-1").strip())
                if not lines:
                    return
                self.requests.append(lines[0])
                method, url = lines[0].split(" ")[:2]
                cseq = next((h.split(":", 1)[1].strip() for h in lines if h.lower().startswith("cseq:")), "0")
                conn.sendall(self._answer(method, url, cseq).encode())
                if method == "PLAY":
                    for packet in self.packets:
                        channel = 1 if 200 <= packet[1] <= 204 else 0  # RTCP on the odd channel
                        conn.sendall(b"$" + bytes([channel]) + len(packet).to_bytes(2, "big") + packet)
                if method == "TEARDOWN" or (method == "DESCRIBE" and self.redirect_to):
                    return

    def _answer(self, method: str, url: str, cseq: str) -> str:
        head = f"CSeq: {cseq}\r\n"
        if method == "OPTIONS":
            return f"RTSP/1.0 200 OK\r\n{head}Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n"
        if method == "DESCRIBE" and self.redirect_to:
            return f"RTSP/1.0 302 Moved Temporarily\r\n{head}Location: {self.redirect_to}\r\nContent-Length: 0\r\n\r\n"
        if method == "DESCRIBE":
            base = url.rstrip("/") + "/"
            return (
                f"RTSP/1.0 200 OK\r\n{head}Content-Base: {base}\r\nContent-Type: application/sdp\r\n"
                f"Content-Length: {len(SDP)}\r\n\r\n{SDP}"
            )
        if method == "SETUP":
            return f"RTSP/1.0 200 OK\r\n{head}Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 4242\r\n\r\n"
        return f"RTSP/1.0 200 OK\r\n{head}Session: 4242\r\n\r\n"
