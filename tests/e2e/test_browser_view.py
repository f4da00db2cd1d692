"""livekit-client (npm, the build the playground serves) in Debian's headless Chromium watches a stream
with a viewer token (`POST /v1/streams/{id}/viewer-token`) while the `livekit` Python SDK publishes the
numbered test pattern into it.

The page (tests/e2e/assets/view.html) attaches the remote track to a <video> and, for every frame the
video presents, draws it to a canvas and keeps the top row of blocks as grey bytes; the test reads the
frame numbers from them with `livesight.ingest.pattern.read_frame_number`, the server's own reader.
So the test sees what the browser decoded and showed, not what the server meant to send.

Runs inside the private network namespace (scripts/netns). Playwright only drives the system Chromium.
"""

from __future__ import annotations

import asyncio
import base64
import http.server
import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from livesight.core.clock import SystemClock
from livesight.ingest.options import IngestOptions
from livesight.ingest.pattern import read_frame_number
from tests.e2e.media import PREROLL_BASE, Published, publish_pattern, read_frames, wait_for
from tests.e2e.test_browser_publish import _Assets
from tests.support.media_env import CHROMIUM, CHROMIUM_FLAGS
from tests.support.server import LiveServer, run_server

pytestmark = [pytest.mark.browser, pytest.mark.webrtc, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    options = IngestOptions(no_frame_timeout_s=2.0)
    with run_server(
        tmp_path_factory.mktemp("browser-view"), clock=SystemClock(), create_app_kwargs={"ingest_options": options}
    ) as live:
        yield live


@pytest.fixture(scope="module")
def page_server() -> Iterator[str]:
    """The test page and the npm livekit-client build (the same files test_browser_publish serves)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Assets)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


class Publisher:
    """`publish_pattern` on its own event loop in a thread (Playwright's sync API owns the test's thread)."""

    def __init__(self, url: str, token: str, seconds: float) -> None:
        self.result: Published | None = None
        self._thread = threading.Thread(target=self._run, args=(url, token, seconds), daemon=True)
        self._thread.start()

    def _run(self, url: str, token: str, seconds: float) -> None:
        self.result = asyncio.run(publish_pattern(url, token, seconds=seconds))

    def join(self, timeout: float) -> Published:
        self._thread.join(timeout)
        assert self.result is not None, "the publisher did not finish"
        return self.result


def new_stream(server: LiveServer, key: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    with server.client(key) as c:
        created = c.post("/v1/streams").json()
        view = c.post(f"/v1/streams/{created['id']}/viewer-token")
    assert view.status_code == 200, view.text
    return created["id"], created["publish"], view.json()["view"]


def numbers_seen(page: Any) -> tuple[list[int | None], set[tuple[int, int]]]:
    """The pattern number of every frame the page's <video> presented, in order (None: unreadable)."""
    numbers: list[int | None] = []
    sizes: set[tuple[int, int]] = set()
    for strip in page.evaluate("window.strips"):
        grey = np.frombuffer(base64.b64decode(strip["grey"]), np.uint8).reshape(strip["rows"], strip["width"])
        numbers.append(read_frame_number(grey))
        sizes.add((strip["width"], strip["height"]))
    return numbers, sizes


def watch_in_browser(browser: Any, page_server: str, view: dict[str, Any], publisher_first: bool, start: Any) -> Any:
    context = browser.new_context()
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    publisher = start() if publisher_first else None
    page.goto(f"{page_server}/view.html#url={view['url']}&token={view['token']}")
    if publisher is None:
        joined = wait_for(lambda: page.evaluate("window.result.state") != "starting", timeout=20, interval=0.2)
        assert joined and page.evaluate("window.result.state") == "connected", (page.evaluate("window.result"), console)
        assert page.evaluate("window.strips.length") == 0  # nothing to show before the stream has video
        publisher = start()

    def enough() -> bool:
        return int(page.evaluate("window.strips.length")) >= 80  # 1 s of warm-up frames, then 4 s or more

    played = wait_for(enough, timeout=40, interval=0.25)
    result = page.evaluate("window.result")
    assert played, f"the browser showed too few frames: {result}; console: {console[-30:]}"
    return context, page, publisher, console


@pytest.mark.parametrize("publisher_first", [True, False], ids=["join-live-stream", "join-before-video"])
def test_chromium_viewer_shows_the_published_frames(
    server: LiveServer,
    page_server: str,
    browser: Any,
    publisher_first: bool,
) -> None:
    key = server.new_key()
    stream_id, publish, view = new_stream(server, key)
    assert view["url"] == publish["url"] and view["expires_in_seconds"] == 300

    def start() -> Publisher:
        pub = Publisher(publish["url"], publish["token"], seconds=10)
        if publisher_first:
            time.sleep(1.5)  # the stream is live (frames buffered) when the viewer joins
        return pub

    context, page, publisher, console = watch_in_browser(browser, page_server, view, publisher_first, start)
    try:
        numbers, sizes = numbers_seen(page)
        state = page.evaluate("window.result")
    finally:
        context.close()
    published = publisher.join(30)
    assert published.connect_error is None and published.publish_error is None, published
    assert state["state"] == "playing", state
    assert state["canPublish"] is False, state
    assert "disconnected" not in state, state
    # one remote participant ("publisher") with one camera video track; the viewer itself is hidden
    assert len(state["subscribed"]) == 1, state
    identity, track_sid, source, kind = state["subscribed"][0].split("/")
    assert (identity, source, kind) == ("publisher", "camera", "video") and track_sid.startswith("TR_"), state
    assert set(state["participants"]) == {"publisher"}, state

    assert None not in numbers, f"a presented frame without a readable number: {numbers}; console: {console[-20:]}"
    counted = [n for n in numbers if n is not None and n < PREROLL_BASE]
    assert len(counted) >= 45, numbers
    assert all(b > a for a, b in itertools.pairwise(counted)), f"frame numbers did not increase: {counted}"
    assert set(counted) <= set(published.sent), "the browser showed numbers nobody published"
    buffered = {f.number for f in read_frames(server, stream_id)}
    assert set(counted) <= buffered, "the browser showed frames the buffer does not have"
    assert sizes == {(640, 480)}, sizes
