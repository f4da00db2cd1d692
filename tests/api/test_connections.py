"""Connection hygiene against the real server, with real sockets: idle and half-open connections are
closed, the connection cap answers 503 (or closes) past it and recovers, and health checks keep
answering while idle sockets are open, even under a low open-file limit."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from livesight.api.server import RESERVE, connection_cap
from tests.support.polling import wait_for
from tests.support.server import LiveServer, run_server

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setblocking(False)
    return sock


def is_closed(sock: socket.socket) -> bool:
    """True once the server closed its end (EOF or reset); never consumes a byte of data."""
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def read_response(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """One whole response (headers and a content-length body) read from `sock`."""
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            time.sleep(0.01)
            continue
        if not chunk:
            break
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            if len(body) >= length:
                return data
    raise AssertionError(f"no complete response: {data!r}")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def get(port: int, path: str, method: str = "GET", body: bytes | None = None) -> Answer:
    """One request on a fresh connection, closed after the answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        r = conn.getresponse()
        return Answer(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


def answers(port: int, path: str, status: int) -> bool:
    """Whether a fresh connection gets `status` for `path` (False when the server closes it first)."""
    try:
        return get(port, path).status == status
    except (OSError, http.client.HTTPException):
        return False


def wait_closed(sock: socket.socket, timeout: float, what: str) -> float:
    started = time.monotonic()
    wait_for(lambda: is_closed(sock), timeout=timeout, what=what)
    return time.monotonic() - started


@pytest.fixture
def quick(tmp_path: Path) -> Iterator[LiveServer]:
    with run_server(tmp_path, http_header_timeout_s=1.0, http_keep_alive_timeout_s=3) as live:
        yield live


def test_a_connection_that_sends_nothing_is_closed(quick: LiveServer) -> None:
    sock = connect(quick.port)
    waited = wait_closed(sock, 10, "the server to close a silent connection")
    assert waited > 0.5  # closed by the header timeout, not refused


def test_a_half_open_request_is_closed_even_while_it_trickles(quick: LiveServer) -> None:
    partial, trickling = connect(quick.port), connect(quick.port)
    partial.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")  # headers never end
    trickling.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
    deadline = time.monotonic() + 10
    while not is_closed(trickling):  # one header byte every 0.1 s: never idle, never complete
        assert time.monotonic() < deadline, "a trickling request was never closed"
        try:
            trickling.sendall(b"a")
        except (BrokenPipeError, ConnectionResetError):
            break
        time.sleep(0.1)
    wait_closed(partial, 5, "a request whose headers never end to be closed")  # closed without an answer


def test_keep_alive_is_reused_then_closed_when_idle(quick: LiveServer) -> None:
    sock = connect(quick.port)
    for _ in range(3):  # requests within the idle timeout reuse the connection, past the header timeout
        sock.sendall(REQUEST)
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        time.sleep(0.6)
    wait_closed(sock, 10, "the idle keep-alive connection to close")


def test_bytes_between_requests_do_not_keep_a_connection_open(quick: LiveServer) -> None:
    sock = connect(quick.port)
    sock.sendall(REQUEST)
    assert read_response(sock).startswith(b"HTTP/1.1 200")
    deadline = time.monotonic() + 10
    while not is_closed(sock):  # a CRLF every 0.3 s restarts uvicorn's idle timer, not ours
        assert time.monotonic() < deadline, "CRLFs kept a connection open"
        try:
            sock.sendall(b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            break
        time.sleep(0.3)


def _hold(port: int, n: int) -> list[socket.socket]:
    """`n` keep-alive connections the server has accepted (each made one request)."""
    socks = []
    for _ in range(n):
        sock = connect(port)
        sock.sendall(REQUEST)
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        socks.append(sock)
    return socks


def test_past_the_cap_requests_get_503_health_checks_pass_and_it_recovers(tmp_path: Path) -> None:
    with run_server(tmp_path, http_max_connections=4, http_keep_alive_timeout_s=60) as live:
        held = _hold(live.port, 4)
        r = get(live.port, "/v1/models")
        assert r.status == 503
        assert r.headers["retry-after"] == "1" and r.headers["connection"] == "close"
        assert r.headers["content-type"] == "application/json"
        assert "connection limit (4)" in r.json()["detail"]
        chat = get(live.port, "/v1/chat/completions", "POST", b"{}")
        assert chat.status == 503
        assert chat.json()["detail"]["error"]["code"] == "server_busy"
        for path in ("/healthz", "/readyz"):
            assert get(live.port, path).status == 200, path
        assert get(live.port, "/rtc/validate?access_token=nope").status != 503  # publishers reach signalling
        assert all(not is_closed(s) for s in held)  # the cap never drops connections it admitted
        for sock in held[:2]:
            sock.close()
        wait_for(lambda: answers(live.port, "/v1/models", 200), timeout=10, what="requests served again below the cap")
        for sock in held[2:]:  # and the connections that were never dropped still work
            sock.sendall(REQUEST)
            assert read_response(sock).startswith(b"HTTP/1.1 200")
            sock.close()


def test_past_cap_and_reserve_new_connections_are_closed_at_once(tmp_path: Path) -> None:
    with run_server(tmp_path, http_max_connections=2, http_keep_alive_timeout_s=60) as live:
        held = _hold(live.port, 2)
        reserve = [connect(live.port) for _ in range(RESERVE)]
        time.sleep(0.2)  # let the server accept them
        extra = connect(live.port)
        wait_closed(extra, 5, "a connection past cap + reserve to be closed")
        for sock in reserve:  # the reserve holds silent connections for a moment only
            wait_closed(sock, 10, "a silent connection past the cap to be closed")
        assert get(live.port, "/healthz").status == 200
        for sock in [*held, *reserve, extra]:
            sock.close()


def test_the_cap_is_lowered_to_fit_the_open_file_limit() -> None:
    assert connection_cap(1000, None) == 1000
    assert connection_cap(1000, 20_000) == 1000
    assert connection_cap(1000, 1024) == 512 - RESERVE
    assert connection_cap(1000, 8) == 1


CHILD = """
import resource, sys, tempfile
from pathlib import Path
resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
from tests.support.server import run_server
with tempfile.TemporaryDirectory() as d, run_server(Path(d), http_header_timeout_s=60) as live:
    print(live.port, flush=True)
    sys.stdin.read()
"""


def test_health_answers_while_idle_sockets_exceed_a_low_open_file_limit() -> None:
    """300 silent sockets against a server limited to 256 open files: /healthz still answers."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    socks: list[socket.socket] = []
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        socks = [connect(port) for _ in range(300)]
        wait_for(lambda: answers(port, "/healthz", 200), timeout=15, what="/healthz to answer")
        assert sum(not is_closed(s) for s in socks) >= 50  # while many idle ones are still open
    finally:
        for sock in socks:
            sock.close()
        child.kill()
        child.wait(10)
