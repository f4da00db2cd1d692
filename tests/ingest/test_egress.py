"""Pulled sources pass the outbound policy on every hop (HTTP redirects, HLS segments, RTSP
redirects), tell the client only "could not open source", back off and end after repeated failure.

"Never connected" is read from a listener the test owns at the refused address: 127.0.0.2 here
(the policy of these tests allows only 127.0.0.1), 169.254.169.254 and loopback in the namespace
test of tests/ingest/test_egress_netns.py.
"""

from __future__ import annotations

import base64
import functools
import http.server
import itertools
import logging
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from livesight.core.clock import SystemClock
from livesight.core.outbound import OutboundPolicy
from livesight.ingest.egress import Egress
from tests.ingest.test_pull import write_hls
from tests.support.polling import wait_for
from tests.support.rtsp import FakeRtspServer, rtp_packets
from tests.support.server import LiveServer, run_server

pytestmark = pytest.mark.timeout(90)
# The address policy under test, not the host-name narrowing: both names pass it, one address does not.
ONLY_127_0_0_1 = {"outbound_allow_cidrs": ["127.0.0.1/32"], "source_allowed_hosts": ["127.0.0.1", "127.0.0.2"]}
GENERIC = "could not open source"


class Trap:
    """A listener at an address the policy refuses: records every connection made to it."""

    def __init__(self, host: str = "127.0.0.2") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen()
        self.host, self.port = host, self.sock.getsockname()[1]
        self.hits: list[Any] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def netloc(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, address = self.sock.accept()
            except OSError:
                return
            self.hits.append(address)
            conn.close()

    def close(self) -> None:
        self.sock.close()


def serve_http(directory: Path, redirects: dict[str, str], host: str = "127.0.0.1") -> http.server.ThreadingHTTPServer:
    """Static files of `directory`, plus `path -> Location` 302 answers."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path in redirects:
                self.send_response(302)
                self.send_header("Location", redirects[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer((host, 0), functools.partial(Handler, directory=str(directory)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.fixture
def trap() -> Iterator[Trap]:
    t = Trap()
    yield t
    t.close()


def pull(live: LiveServer, kind: str, url: str) -> tuple[Any, str]:
    c = live.client(live.new_key())
    created = c.post("/v1/streams", json={"source": {"type": kind, "url": url}})
    assert created.status_code == 201, created.text
    return c, created.json()["id"]


def first_error(c: Any, sid: str) -> str:
    status = wait_for(lambda: (s := c.get(f"/v1/streams/{sid}").json())["last_error"] and s, 20, what="an error")
    return str(status["last_error"])


def refusals(caplog: Any) -> list[str]:
    lines = [r.getMessage() for r in caplog.records if r.name == "livesight.ingest.egress"]
    return [line for line in lines if "refused" in line]


def test_http_redirect_to_a_refused_address_is_never_followed(tmp_path: Path, trap: Trap, caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    httpd = serve_http(tmp_path, {"/cam.m3u8": f"http://{trap.netloc}/latest/meta-data/"})
    try:
        with run_server(tmp_path, clock=SystemClock(), **ONLY_127_0_0_1) as live:
            c, sid = pull(live, "hls", f"http://127.0.0.1:{httpd.server_address[1]}/cam.m3u8")
            error = first_error(c, sid)
            assert trap.hits == []
            assert error.startswith(GENERIC)
            wait_for(lambda: refusals(caplog), 10, what="the refusal in the log")
            c.close()
        assert trap.hits == []
        assert any(trap.netloc in line and "loopback" in line for line in refusals(caplog))
    finally:
        httpd.shutdown()


def tls_context(directory: Path) -> ssl.SSLContext:
    """A self-signed certificate for 127.0.0.1 (FFmpeg does not verify by default, like a LAN camera)."""
    key, cert = directory / "key.pem", directory / "cert.pem"
    subject = ["-days", "1", "-subj", "/CN=127.0.0.1"]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, *subject],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def test_https_and_no_proxy_do_not_bypass_the_policy(
    tmp_path: Path, trap: Trap, caplog: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """https goes through the proxy as CONNECT, and FFmpeg's `no_proxy` bypass is closed."""
    caplog.set_level(logging.INFO)
    monkeypatch.delenv("NO_PROXY", raising=False)  # restored after the test, whatever the server moves there
    monkeypatch.setenv("no_proxy", "*")  # FFmpeg would connect directly to every host
    httpd = serve_http(tmp_path, {"/a.m3u8": f"https://{trap.netloc}/a.m3u8", "/b.m3u8": f"http://{trap.netloc}/b"})
    httpd.socket = tls_context(tmp_path).wrap_socket(httpd.socket, server_side=True)
    base = f"https://127.0.0.1:{httpd.server_address[1]}"
    try:
        with run_server(tmp_path, clock=SystemClock(), **ONLY_127_0_0_1) as live:
            c, sid = pull(live, "hls", f"{base}/a.m3u8")
            c2, sid2 = pull(live, "hls", f"{base}/b.m3u8")
            errors = first_error(c, sid), first_error(c2, sid2)
            assert trap.hits == []
            assert all(e.startswith(GENERIC) for e in errors), errors
            wait_for(lambda: len(refusals(caplog)) >= 2, 10, what="both refusals in the log")
            c.close()
            c2.close()
        assert trap.hits == []
        assert any(line.startswith(f"pulled source stream {sid}: refused CONNECT") for line in refusals(caplog))
    finally:
        httpd.shutdown()


def test_host_name_narrowing_applies_to_every_hop(tmp_path: Path, caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    trap = Trap("127.0.0.1")  # an allowed address, under a host name that is not allowed
    httpd = serve_http(tmp_path, {"/cam.m3u8": f"http://localhost:{trap.port}/cam.m3u8"})
    try:
        with run_server(tmp_path, clock=SystemClock(), source_allowed_hosts=["127.0.0.1"]) as live:
            c, sid = pull(live, "hls", f"http://127.0.0.1:{httpd.server_address[1]}/cam.m3u8")
            assert first_error(c, sid).startswith(GENERIC)
            wait_for(lambda: refusals(caplog), 10, what="the refusal in the log")
            c.close()
        assert trap.hits == []
        assert any("allowed host names" in line for line in refusals(caplog))
    finally:
        httpd.shutdown()
        trap.close()


def test_hls_segment_at_a_refused_address_is_never_fetched(tmp_path: Path, trap: Trap, caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    media = tmp_path / "hls"
    media.mkdir()
    write_hls(media, frames=10)
    write_hls(media, frames=10, name="aes", encrypt=True)
    playlist = (media / "live.m3u8").read_text()
    (media / "evil.m3u8").write_text(playlist.replace("live0.ts", f"http://{trap.netloc}/live0.ts"))
    (media / "local.m3u8").write_text(playlist.replace("live0.ts", f"file://{media}/live0.ts"))
    encrypted = (media / "aes.m3u8").read_text()
    (media / "evil-aes.m3u8").write_text(encrypted.replace("aes0.ts", f"http://{trap.netloc}/aes0.ts"))
    (media / "evil-key.m3u8").write_text(encrypted.replace("key.bin", f"http://{trap.netloc}/key.bin"))
    httpd = serve_http(media, {})
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        with run_server(tmp_path, clock=SystemClock(), **ONLY_127_0_0_1) as live:
            # a refused plain segment, AES-128 segment and key; a file: segment (not opened at all)
            names = ["evil", "evil-aes", "evil-key", "local"]
            pulled = [pull(live, "hls", f"{base}/{name}.m3u8") for name in names]
            errors = [first_error(c, sid) for c, sid in pulled]
            assert trap.hits == []
            assert all(error.startswith(GENERIC) for error in errors), errors
            refused = ("/live0.ts", "/aes0.ts", "/key.bin")
            wait_for(
                lambda: all(any(f"{trap.netloc}{path}" in line for line in refusals(caplog)) for path in refused),
                10,
                what="the three refusals in the log",
            )
            assert all(c.get(f"/v1/streams/{sid}").json()["last_frame_index"] is None for c, sid in pulled)
            good, sid = pull(live, "hls", f"{base}/aes.m3u8")  # the same encrypted playlist, allowed: it plays
            wait_for(lambda: (good.get(f"/v1/streams/{sid}").json()["last_frame_index"] or 0) >= 9, 20, what="frames")
            for c in [good, *(c for c, _ in pulled)]:
                c.close()
        assert trap.hits == []
    finally:
        httpd.shutdown()


def test_rtsp_redirect_to_a_refused_address_is_never_followed(tmp_path: Path, caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    with (
        FakeRtspServer(host="127.0.0.2") as target,
        FakeRtspServer(redirect_to=target.url) as camera,
        run_server(tmp_path, clock=SystemClock(), **ONLY_127_0_0_1) as live,
    ):
        c, sid = pull(live, "rtsp", camera.url)
        error = first_error(c, sid)
        assert target.connections == []
        assert error.startswith(GENERIC)
        wait_for(lambda: refusals(caplog), 10, what="the refusal in the log")
        assert any("DESCRIBE" in r for r in camera.requests), camera.requests
        c.close()
    assert target.connections == []
    assert any("redirect" in line and target.url in line for line in refusals(caplog))


@pytest.mark.parametrize("redirected", [False, True])
def test_rtsp_source_plays_through_the_relay(tmp_path: Path, redirected: bool) -> None:
    """A camera plays through the relay, also behind an allowed redirect (relayed again, checked again)."""
    with (
        FakeRtspServer(packets=rtp_packets(frames=20)) as camera,
        FakeRtspServer(redirect_to=camera.url) as redirector,
        run_server(tmp_path, clock=SystemClock(), **ONLY_127_0_0_1) as live,
    ):
        c, sid = pull(live, "rtsp", redirector.url if redirected else camera.url)
        status = wait_for(
            lambda: (
                (s := c.get(f"/v1/streams/{sid}").json())["last_frame_index"] is not None
                and s["last_frame_index"] >= 15
                and s
            ),
            20,
            what="frames from the camera",
        )
        assert (status["width"], status["height"], status["codec"]) == (320, 240, "H264")
        assert camera.connections and all(host == "127.0.0.1" for host, _ in camera.connections)
        assert bool(redirector.connections) == redirected
        c.close()


GST_RTSP = Path(__file__).parent.parent / "support" / "gst_rtsp.py"


def gst_rtsp_available() -> bool:
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    return Path("/usr/bin/python3").exists() and subprocess.run(["/usr/bin/python3", "-c", probe]).returncode == 0


def test_a_real_rtsp_server_plays_through_the_relay(tmp_path: Path) -> None:
    """GStreamer's gst-rtsp-server (RTP over the RTSP TCP session, RTCP, its own SDP) through the relay."""
    if not gst_rtsp_available():
        why = "needs Debian's python3-gi and gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-{base,good,ugly}"
        if os.environ.get("CI") in ("1", "true", "TRUE", "yes"):
            pytest.fail(why + " (scripts/setup-media --browser installs them; CI must run this test)")
        pytest.skip(why)
    server = subprocess.Popen(
        ["/usr/bin/python3", str(GST_RTSP), "127.0.0.1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        with run_server(tmp_path, clock=SystemClock(), **ONLY_127_0_0_1) as live:
            c, sid = pull(live, "rtsp", f"rtsp://127.0.0.1:{port}/live")
            status = wait_for(
                lambda: ((s := c.get(f"/v1/streams/{sid}").json())["last_frame_index"] or 0) >= 10 and s,
                30,
                what="frames from gst-rtsp-server",
            )
            assert (status["width"], status["height"], status["codec"]) == (320, 240, "H264")
            c.close()
    finally:
        try:
            server.communicate(timeout=10)  # closing its stdin stops it
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_refused_unreachable_and_undecodable_sources_read_the_same(tmp_path: Path, trap: Trap, caplog: Any) -> None:
    """The client cannot tell what listens where: one message for all three; the log tells them apart."""
    caplog.set_level(logging.INFO)
    (tmp_path / "junk.m3u8").write_bytes(b"this is not a playlist\n" * 20)
    httpd = serve_http(tmp_path, {})
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens there: connection refused
    try:
        with run_server(tmp_path, clock=SystemClock(), **ONLY_127_0_0_1) as live:
            sources = {
                "refused": ("rtsp", f"rtsp://{trap.netloc}/cam"),
                "unreachable": ("rtsp", f"rtsp://admin:s3cret@127.0.0.1:{closed_port}/cam"),
                "undecodable": ("hls", f"http://127.0.0.1:{httpd.server_address[1]}/junk.m3u8"),
                "unreachable_hls": ("hls", f"http://127.0.0.1:{closed_port}/cam.m3u8"),
            }
            errors = {}
            for name, (kind, url) in sources.items():
                c, sid = pull(live, kind, url)
                errors[name] = first_error(c, sid)
                c.close()
        assert set(errors.values()) == {f"{GENERIC}; retrying in 1 s"}, errors
        assert trap.hits == []
        lines = [r.getMessage() for r in caplog.records if r.name.startswith("livesight.ingest")]
        assert any("loopback" in line for line in lines)
        assert any(str(closed_port) in line for line in lines)
        assert not any("s3cret" in r.getMessage() for r in caplog.records)  # the camera password
    finally:
        httpd.shutdown()


def test_undecodable_file_backs_off_and_its_stream_ends_source_failed(tmp_path: Path, caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    media = tmp_path / "media"
    media.mkdir()
    (media / "broken.mp4").write_bytes(b"\x00not a video" * 1000)
    with run_server(tmp_path, clock=SystemClock(), source_file_dir=media, source_max_failures=3) as live:
        c, sid = pull(live, "file", "broken.mp4")
        status = wait_for(lambda: (s := c.get(f"/v1/streams/{sid}").json())["state"] == "ended" and s, 20, what="end")
        assert status["end_reason"] == "source_failed"
        assert status["last_error"] == f"{GENERIC}; gave up after 3 attempts"
        time.sleep(1.5)  # nothing retries after the end
        c.close()
    pulls = [r for r in caplog.records if r.name == "livesight.ingest.pull"]
    attempts = [r for r in pulls if "could not be opened" in r.getMessage()]
    assert len(attempts) == 3, [r.getMessage() for r in attempts]  # one line per attempt, never per frame
    gaps = [b.created - a.created for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9, gaps  # 1 s, then 2 s: backed off, not a retry storm


def test_the_proxy_and_relays_serve_only_their_own_source(trap: Trap) -> None:
    """Another local process gets a 407 from the proxy without the source's credentials, and a relay
    accepts one connection only (then it is gone)."""
    egress = Egress(OutboundPolicy.build(allow=["127.0.0.1/32", "127.0.0.2/32"]))
    try:
        proxy = urlsplit(egress.proxy_url("stream x"))
        for credentials in (None, "livesight:wrong", f"{proxy.username}:{proxy.password}x"):
            with socket.create_connection(("127.0.0.1", proxy.port or 0), timeout=5) as conn:
                token = base64.b64encode((credentials or "").encode()).decode()
                auth = f"Proxy-Authorization: Basic {token}\r\n" if credentials else ""
                conn.sendall(f"GET http://{trap.netloc}/ HTTP/1.1\r\n{auth}\r\n".encode())
                assert conn.recv(100).startswith(b"HTTP/1.1 407"), credentials
        relay = urlsplit(egress.rtsp_relay("stream x", f"rtsp://{trap.netloc}/cam"))
        with socket.create_connection(("127.0.0.1", relay.port or 0), timeout=5):
            wait_for(lambda: trap.hits, 5, what="the relay's connection to the camera")
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", relay.port or 0), timeout=5).close()
        assert len(trap.hits) == 1
    finally:
        egress.close()
