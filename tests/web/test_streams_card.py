"""The playground's Streams card in Chromium: the key's streams are listed (active first), the picked
one plays live from a viewer token (`POST /v1/streams/{id}/viewer-token`, livekit-client) next to the
answers, questions go to it, and its states are clear: connecting, no video yet, live, stream ended.

The video is the `livekit` Python SDK publishing the numbered test pattern; the test reads the frame
numbers off the page's own <video> (drawn to a canvas, read with `read_frame_number`), so it sees what
the page shows. Runs inside the private network namespace (scripts/netns)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from livekit.protocol import models
from playwright.sync_api import expect

from livesight.core.clock import SystemClock
from livesight.ingest.options import IngestOptions
from livesight.ingest.pattern import read_frame_number
from livesight.settings import ModelConfig
from tests.e2e.media import PREROLL_BASE
from tests.e2e.test_browser_view import Publisher
from tests.support.fake_upstream import MODEL, run_fake_upstream
from tests.support.polling import wait_for
from tests.support.server import LiveServer, run_server
from tests.support.video import write_video
from tests.web.pages import MOBILE, Playground

pytestmark = [pytest.mark.webrtc, pytest.mark.browser, pytest.mark.timeout(150)]

# Draws the <video>'s current frame to a canvas and returns the top row of blocks (the pattern's frame
# number) as limited-range luma, what `read_frame_number` reads.
TOP_ROW = """v => {
  const w = v.videoWidth, rows = Math.ceil(w / 40);
  if (!w) return null;
  const c = document.createElement("canvas");
  c.width = w; c.height = rows;
  const ctx = c.getContext("2d");
  ctx.drawImage(v, 0, 0, w, rows, 0, 0, w, rows);
  const d = ctx.getImageData(0, 0, w, rows).data;
  const grey = [];
  for (let i = 0; i < w * rows; i++) {
    grey.push(Math.round(16 + (65.481 * d[4 * i] + 128.553 * d[4 * i + 1] + 24.966 * d[4 * i + 2]) / 255));
  }
  return { width: w, height: v.videoHeight, rows, grey };
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with run_fake_upstream() as fake:
        model = ModelConfig(id="qwen", base_url=fake.base_url, upstream_model=MODEL, profile="vllm")
        with run_server(
            tmp_path_factory.mktemp("streams-card"),
            clock=SystemClock(),
            models=[model],
            builtin_models=[],
            create_app_kwargs={"ingest_options": IngestOptions(no_frame_timeout_s=2.0)},
        ) as live:
            yield live


def shown_number(pg: Playground) -> tuple[int | None, tuple[int, int]]:
    """The pattern number of the frame the playground's live <video> shows now, and its size."""
    top = pg.loc("#live-video").evaluate(TOP_ROW)
    assert top is not None, "the live video has no frame"
    grey = np.array(top["grey"], np.uint8).reshape(top["rows"], top["width"])
    return read_frame_number(grey), (top["width"], top["height"])


def test_pick_a_published_stream_watch_it_live_ask_about_it_and_see_it_end(
    browser: Any, site: LiveServer, artifacts: Any
) -> None:
    key = site.new_key()
    with site.client(key) as c:
        ended = c.post("/v1/streams").json()["id"]
        assert c.delete(f"/v1/streams/{ended}").status_code == 200
        idle = c.post("/v1/streams").json()["id"]  # nobody publishes into it
        created = c.post("/v1/streams").json()
    live_id, publish = created["id"], created["publish"]
    publisher = Publisher(publish["url"], publish["token"], seconds=25)
    pg = Playground.open(browser, site)
    try:
        pg.set_key(key)
        rows = pg.loc("#stream-list .stream-row")
        expect(rows).to_have_count(3, timeout=10_000)
        # active first (newest created first), then the ended one, which cannot be picked
        assert [r.get_attribute("data-id") for r in rows.all()] == [live_id, idle, ended]
        expect(rows.nth(2)).to_be_disabled()
        expect(rows.nth(2)).to_contain_text("ended (deleted)")
        expect(pg.loc("#view-state")).to_have_text("nothing picked")

        # a stream with no video: connecting, then "no video yet"
        pg.loc(f'.stream-row[data-id="{idle}"]').click()
        expect(pg.loc("#view-state")).to_have_text("no video yet", timeout=20_000)
        expect(pg.loc("#view-empty")).to_contain_text("No video yet")
        expect(pg.loc(f'.stream-row[data-id="{idle}"]')).to_have_attribute("aria-pressed", "true")

        # the published stream: live, and the numbers on the page's video are what was published
        expect(pg.loc(f'.stream-row[data-id="{live_id}"]')).to_contain_text(
            re.compile(r"fps · 640×480"), timeout=20_000
        )
        pg.loc(f'.stream-row[data-id="{live_id}"]').click()
        expect(pg.loc("#view-state")).to_have_text("live", timeout=30_000)
        expect(pg.loc("#view-id")).to_have_text(live_id)
        seen: list[int] = []

        def more_numbers() -> bool:
            number, size = shown_number(pg)
            assert size == (640, 480), size
            if number is not None and number < PREROLL_BASE and (not seen or number > seen[-1]):
                seen.append(number)
            return len(seen) >= 3

        wait_for(more_numbers, timeout=20, interval=0.3, what="the live video to advance")
        assert seen == sorted(seen) and len(set(seen)) == len(seen), seen
        pg.loc("#view-stage").scroll_into_view_if_needed()
        pg.screenshot(artifacts / "playground-streams-live-1280x800.png")
        pg.page.set_viewport_size(MOBILE)
        assert pg.page.evaluate("() => document.documentElement.scrollWidth") <= MOBILE["width"]
        pg.screenshot(artifacts / "playground-streams-live-390x844.png", full_page=True)
        pg.page.set_viewport_size({"width": 1280, "height": 800})

        # questions go to the picked stream
        expect(pg.loc("#ask-hint")).to_contain_text(live_id[:8])
        assert live_id in str(pg.loc("#snippet").text_content())
        pg.choose_model("qwen")
        pg.ask("What is on screen?")
        sent = [r for r in pg.requests if r.url.endswith("/v1/chat/completions") and r.method == "POST"]
        body = json.loads(sent[-1].post_data)
        urls = [p["image_url"]["url"] for p in body["messages"][-1]["content"] if p["type"] == "image_url"]
        assert urls == [f"ovs://streams/{live_id}?frame_index=-1"], body
        expect(pg.loc("#frames-used .thumb img")).to_have_count(1, timeout=15_000)
        pg.loc("#view-stage").scroll_into_view_if_needed()
        pg.screenshot(artifacts / "playground-streams-answer-1280x800.png")
        assert pg.loc("#watch-stream").input_value() == live_id

        # the stream ends elsewhere: the page says so
        with site.client(key) as c:
            assert c.delete(f"/v1/streams/{live_id}").status_code == 200
        expect(pg.loc("#view-state")).to_have_text("stream ended", timeout=15_000)
        expect(pg.loc("#view-stage")).not_to_have_attribute("data-video", "1")
        expect(pg.loc("#ask")).to_be_disabled()
        expect(pg.loc(f'.stream-row[data-id="{live_id}"]')).to_be_disabled(timeout=10_000)
        assert pg.loc("#live-video").evaluate("v => v.srcObject") is None
        viewer = pg.page.evaluate(
            "() => ({tokens: window.livesightViewer.tokens, state: window.livesightViewer.state})"
        )
        assert viewer == {"tokens": 1, "state": "ended"}, viewer
        assert not [u for u in pg.request_urls() if key in u], "the key must never be in a URL"
        assert not pg.errors, pg.errors
    finally:
        pg.close()
        publisher.join(40)


@pytest.fixture(scope="module")
def pulled_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with a file source directory holding 40 s of the numbered test pattern (MPEG-4: the
    server stores JPEGs, and each viewer gets them VP8-encoded)."""
    root = tmp_path_factory.mktemp("pulled")
    media = root / "media"
    media.mkdir()
    write_video(media / "pattern.mp4", frames=400, fps=10, size=(640, 360))
    with run_server(root, clock=SystemClock(), source_file_dir=media, builtin_models=[]) as live:
        yield live


def test_a_pulled_stream_plays_and_the_viewer_renews_its_token_and_rejoins(
    browser: Any, pulled_site: LiveServer
) -> None:
    key = pulled_site.new_key()
    with pulled_site.client(key) as c:
        created = c.post("/v1/streams", json={"source": {"type": "file", "url": "pattern.mp4"}})
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    pg = Playground.open(browser, pulled_site)
    tokens: list[str] = []

    def short_lived_tokens(route: Any) -> None:
        """The server's viewer token, announced as living 62 s: the page must renew it 60 s before that,
        so every 2 s here (the token itself still lives 300 s on the server)."""
        response = route.fetch()
        body = response.json()
        tokens.append(body["view"]["token"])
        body["view"]["expires_in_seconds"] = 62
        route.fulfill(response=response, json=body)

    pg.page.route(re.compile(r".*/v1/streams/[^/]+/viewer-token$"), short_lived_tokens)
    try:
        pg.set_key(key)
        row = pg.loc(f'.stream-row[data-id="{sid}"]')
        expect(row).to_contain_text("pulled · file", timeout=10_000)
        expect(row).to_contain_text(re.compile(r"fps · 640×360"), timeout=20_000)
        row.click()
        expect(pg.loc("#view-state")).to_have_text("live", timeout=30_000)

        def numbers(count: int) -> list[int]:
            seen: list[int] = []

            def more() -> bool:
                number, size = shown_number(pg)
                assert size == (640, 360), size
                if number is not None and (not seen or number > seen[-1]):
                    seen.append(number)
                return len(seen) >= count

            wait_for(more, timeout=20, interval=0.3, what="the live video to advance")
            return seen

        before = numbers(3)
        # (the page's calls let Playwright's sync API run the route handler meanwhile)
        fetched = lambda: pg.page.evaluate("() => livesightViewer.tokens")  # noqa: E731
        wait_for(lambda: fetched() >= 3, timeout=20, interval=0.2, what="two token renewals")
        assert len(tokens) >= 3
        assert len(set(tokens)) == len(tokens), "every renewal is a new token"
        # the viewer's signalling connection drops (no leave, like a network cut): livekit-client's resume is
        # refused by the server (a leave: it cannot restart ICE), so it rejoins in full with the renewed token
        viewers = pulled_site.components.ingest.viewers

        async def drop() -> int:
            sessions = list(viewers.get(sid, ()))
            for session in sessions:
                await session.channel.close(1011, "dropped for a reconnect test")
            return len(sessions)

        assert pulled_site.call(drop) == 1
        history = lambda: pg.page.evaluate("() => livesightViewer.history")  # noqa: E731
        wait_for(lambda: "reconnecting" in history(), timeout=15, interval=0.1, what="the viewer to notice the drop")
        expect(pg.loc("#view-state")).to_have_text("live", timeout=30_000)
        after = numbers(3)
        assert after[0] > before[-1], (before, after)

        # the server sends the viewer away (a leave, as a restarting server does): the SDK gives up
        # (Disconnected) and the page, seeing the stream still active, rejoins it itself
        async def kick() -> list[str]:
            sessions = list(viewers.get(sid, ()))
            for session in sessions:
                await session.kick(models.DisconnectReason.SERVER_SHUTDOWN, None)
            return [session.identity for session in sessions]

        went = len(history())
        (kicked,) = pulled_site.call(kick)
        wait_for(lambda: "reconnecting" in history()[went:], timeout=15, interval=0.1, what="the page to rejoin")
        expect(pg.loc("#view-state")).to_have_text("live", timeout=30_000)
        rejoined = pulled_site.call(lambda: [v.identity for v in viewers.get(sid, ())])
        assert len(rejoined) == 1 and rejoined != [kicked], rejoined
        last = numbers(3)
        assert last[0] > after[-1], (after, last)
        assert pg.page.evaluate("() => livesightViewer.state") == "live"
        assert history()[:3] == ["connecting", "waiting", "live"], history()
        asks = [r for r in pg.requests if "/viewer-token" in r.url]
        assert all(r.method == "POST" and r.headers.get("authorization") == f"Bearer {key}" for r in asks)
        assert not [u for u in pg.request_urls() if key in u], "the key must never be in a URL"
        assert not pg.errors, pg.errors
    finally:
        pg.close()
