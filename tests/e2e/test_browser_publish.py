"""livekit-client (npm, pinned in src/livesight/web/package.json) in Debian's headless Chromium
publishes its fake camera into a stream; frames arrive in the buffer.

Runs inside the private network namespace (scripts/netns). The page is served by this test, never
by livesight. Playwright only drives the system Chromium (`executable_path`); no browser download.
"""

from __future__ import annotations

import functools
import http.server
import itertools
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from livesight.core.clock import SystemClock
from livesight.ingest.options import IngestOptions
from tests.e2e.media import read_frames, wait_for
from tests.support.media_env import CHROMIUM, CHROMIUM_FLAGS, LIVEKIT_UMD
from tests.support.server import LiveServer, run_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]
ASSETS = Path(__file__).parent / "assets"
LIVEKIT_CLIENT_VERSION = "2.23.0"


class _Assets(http.server.SimpleHTTPRequestHandler):
    def translate_path(self, path: str) -> str:
        name = path.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[-1]
        if name == "livekit-client.umd.js":
            return str(LIVEKIT_UMD)
        return str(ASSETS / name)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Assets))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_FLAGS, "--use-fake-ui-for-media-stream"]
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module", params=["v1", "v0-fallback"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """v1 (single PC); and v1 off, where livekit-client must fall back to /rtc via /rtc/v1/validate's 404."""
    options = IngestOptions(v1=request.param == "v1")
    with run_server(
        tmp_path_factory.mktemp("browser"), clock=SystemClock(), create_app_kwargs={"ingest_options": options}
    ) as live:
        yield live


def test_pinned_livekit_client_version() -> None:
    package = json.loads((LIVEKIT_UMD.parents[1] / "package.json").read_text())
    assert package["version"] == LIVEKIT_CLIENT_VERSION
    declared = json.loads((LIVEKIT_UMD.parents[3] / "package.json").read_text())
    assert declared["dependencies"]["livekit-client"] == LIVEKIT_CLIENT_VERSION


@pytest.mark.parametrize("simulcast", [True, False], ids=["simulcast", "single-layer"])
def test_browser_fake_camera_frames_arrive(server: LiveServer, page_server: str, browser: Any, simulcast: bool) -> None:
    key = server.new_key()
    with server.client(key) as c:
        created = c.post("/v1/streams").json()
    sid, publish = created["id"], created["publish"]
    context = browser.new_context()
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    try:
        fragment = f"url={publish['url']}&token={publish['token']}&simulcast={int(simulcast)}"
        page.goto(f"{page_server}/publish.html#{fragment}")

        def frames_seen() -> bool:
            with server.client(key) as c:
                index = c.get(f"/v1/streams/{sid}").json()["last_frame_index"]
            return index is not None and index >= 30

        arrived = wait_for(frames_seen, timeout=30, interval=0.25)
        result = page.evaluate("window.result")
        assert arrived, f"no frames from the browser: {result}; console: {console[-20:]}"
        assert result["state"] == "published", result
    finally:
        context.close()
    frames = read_frames(server, sid)
    assert [f.index for f in frames] == list(range(len(frames)))
    stamps = [f.timestamp_ms for f in frames]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert {(f.width, f.height) for f in frames[-10:]} == {(640, 480)}
    with server.client(key) as c:
        status = c.get(f"/v1/streams/{sid}").json()
    assert status["codec"] == "VP8"
