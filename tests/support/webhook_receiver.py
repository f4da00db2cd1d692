"""A real HTTP webhook receiver on 127.0.0.1, port 0, in a thread: records what it gets, and can fail
the first N requests (HTTP 500) or hang (never answer until the test ends)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    url: str
    fail_first: int = 0
    hang: bool = False
    received: list[Received] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)

    def ok(self) -> list[Received]:
        return [r for r in self.received if r.status == 200]


@contextlib.contextmanager
def run_receiver(*, fail_first: int = 0, hang: bool = False) -> Iterator[Receiver]:
    receiver = Receiver(url="", fail_first=fail_first, hang=hang)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if receiver.hang:
                receiver.received.append(Received(dict(self.headers), body, 0))
                receiver.released.wait(30)
                return
            failing = len(receiver.received) < receiver.fail_first
            status = 500 if failing else 200
            receiver.received.append(Received(dict(self.headers), body, status))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.released.set()
        server.shutdown()
        server.server_close()
