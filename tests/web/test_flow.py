"""The issue's flow, in Chromium with its fake camera against the real server (inside the private
network namespace): enter a key, start the camera, wait for frames, ask `livesight/ocr` about the
latest frame, see the answer and the thumbnails of the frames used, run the page's curl and Python
snippets for real, stop the stream and check it ended. Plus what goes wrong in long sessions:
a stream that expires elsewhere, an unavailable model, and a publisher connection dropped after the
first publish token expired. Screenshots (1280x800 and 390x844) go to test-artifacts/."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from livesight.core.clock import SystemClock
from livesight.settings import ModelConfig
from tests.support.polling import wait_for
from tests.support.server import LiveServer, run_server
from tests.web.pages import MOBILE, Playground

pytestmark = [pytest.mark.webrtc, pytest.mark.browser, pytest.mark.timeout(240)]
OCR = "livesight/ocr"
UNREACHABLE = ModelConfig(id="Qwen/Qwen3-VL-8B-Instruct", base_url="http://127.0.0.1:9/v1", profile="vllm")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with run_server(tmp_path_factory.mktemp("flow"), clock=SystemClock(), models=[UNREACHABLE]) as live:
        yield live


def started(browser: Any, site: LiveServer, key: str, timings: dict[str, float] | None = None) -> Playground:
    pg = Playground.open(browser, site)
    pg.set_key(key)
    expect(pg.loc("#key-status")).to_have_text("key works")
    t0 = time.perf_counter()
    pg.start_camera()
    pg.wait_for_frames()
    if timings is not None:
        timings["start_camera_to_first_frame_s"] = round(time.perf_counter() - t0, 2)
    expect(pg.loc("#stream-state")).to_have_text("live")
    return pg


def thumbnails(pg: Playground) -> list[int]:
    """Frame indexes of the 'frames sent to the model' tiles, once every image has loaded."""
    tiles = pg.loc("#frames-used .thumb")
    expect(tiles.first).to_be_visible()
    expect(pg.loc("#frames-used .thumb.loading")).to_have_count(0, timeout=15_000)
    expect(pg.loc("#frames-used .thumb.gone")).to_have_count(0)
    for img in pg.loc("#frames-used .thumb img").all():
        assert img.evaluate("i => i.complete && i.naturalWidth > 0")
    captions = pg.loc("#frames-used figcaption").all_text_contents()
    return [int(re.match(r"#([\d,]+)", c).group(1).replace(",", "")) for c in captions]  # type: ignore[union-attr]


def run_snippet(pg: Playground, tab: str, key: str) -> str:
    pg.loc(f"#tab-{tab}").click()
    code = str(pg.loc("#snippet").text_content())
    argv = ["bash", "-c", code] if tab == "curl" else [sys.executable, "-c", code]
    env = {**os.environ, "LIVESIGHT_API_KEY": key}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_camera_to_answer_with_thumbnails_then_stop(browser: Any, site: LiveServer, artifacts: Path) -> None:
    key = site.new_key()
    timings: dict[str, float] = {}
    pg = started(browser, site, key, timings)
    try:
        sid = pg.stream_id()
        expect(pg.loc("#t-res")).to_have_text(re.compile(r"^\d+×\d+"))
        expect(pg.loc("#t-lease")).to_have_text(re.compile(r"left$"))
        expect(pg.loc("#t-publisher")).to_have_text("connected")
        pg.choose_model(OCR)
        expect(pg.loc("#model-status")).to_have_text("ready", timeout=60_000)

        t0 = time.perf_counter()
        answer = pg.ask("What do you see?")
        timings["ask_to_full_answer_s"] = round(time.perf_counter() - t0, 2)
        # a record for docs/playground.md, not an assertion (no timed asserts)
        (artifacts / "playground-timings.json").write_text(json.dumps(timings, indent=2) + "\n")
        expect(pg.loc("#ask-notice")).to_be_hidden()
        assert OCR in answer or "text" in answer, answer  # the OCR model says what it can and cannot read
        used = thumbnails(pg)
        assert len(used) == 1
        with site.client(key) as c:
            status = c.get(f"/v1/streams/{sid}").json()
            frame = c.get(f"/v1/streams/{sid}/frames/{used[0]}")
        assert status["first_available_frame_index"] <= used[0] <= status["last_frame_index"]
        assert frame.headers["content-type"] == "image/jpeg"
        chips = pg.loc("#timing .tchip").all_text_contents()
        assert any(c.startswith("total ") for c in chips) and any(c.startswith("resolve ") for c in chips), chips

        pg.screenshot(artifacts / "playground-answer-1280x800.png")
        pg.page.set_viewport_size(MOBILE)
        assert pg.page.evaluate("() => document.documentElement.scrollWidth") <= MOBILE["width"]
        pg.screenshot(artifacts / "playground-answer-390x844.png", full_page=True)
        pg.page.set_viewport_size({"width": 1280, "height": 800})
        pg.page.emulate_media(color_scheme="dark")
        pg.page.wait_for_timeout(400)  # let the colour transitions settle before the picture
        pg.screenshot(artifacts / "playground-answer-1280x800-dark.png")
        pg.page.emulate_media(color_scheme="light")

        # The snippets are the exact request the page sent, ready to run: compare, then run them.
        sent = [r for r in pg.requests if r.url.endswith("/v1/chat/completions") and r.method == "POST"]
        argv = shlex.split(str(pg.loc("#snippet").text_content()))
        assert json.loads(argv[argv.index("-d") + 1]) == json.loads(sent[-1].post_data)
        assert not {"temperature", "max_tokens"} & set(json.loads(sent[-1].post_data))  # options left empty
        streamed = run_snippet(pg, "curl", key)
        assert "data: [DONE]" in streamed and '"overshoot"' in streamed and sid in streamed
        printed = run_snippet(pg, "python", key)
        assert "frame_indexes" in printed and sid in printed

        pg.loc("#stop").click()
        expect(pg.loc("#stream-state")).to_have_text("ended")
        expect(pg.loc("#start-camera")).to_be_enabled()
        assert pg.loc("#preview").evaluate("v => v.srcObject") is None
        with site.client(key) as c:
            final = c.get(f"/v1/streams/{sid}").json()
        assert final["state"] == "ended" and final["end_reason"] == "deleted"
        assert not pg.errors, pg.errors
    finally:
        pg.close()


def test_options_are_sent_and_shown_in_the_snippets(browser: Any, site: LiveServer, artifacts: Path) -> None:
    key = site.new_key()
    pg = started(browser, site, key)
    try:
        pg.choose_model(OCR)
        expect(pg.loc("#model-status")).to_have_text("ready", timeout=60_000)
        pg.loc("#options summary").click()
        pg.loc("#opt-system").fill("Quote the text exactly.")
        pg.loc("#opt-temperature").fill("3")
        pg.loc("#question").fill("What does the sign say?")
        pg.loc("#ask").click()  # out of range: refused on the page, nothing sent
        assert "Temperature must be a number from 0 to 2." in pg.notice("ask")
        posts = lambda: [r for r in pg.requests if r.url.endswith("/v1/chat/completions") and r.method == "POST"]  # noqa: E731
        assert posts() == []

        pg.loc("#opt-temperature").fill("0.2")
        pg.loc("#opt-max-tokens").fill("64")
        pg.ask("What does the sign say?")
        expect(pg.loc("#ask-notice")).to_be_hidden()
        sent = json.loads(posts()[-1].post_data)
        assert sent["messages"][0] == {"role": "system", "content": "Quote the text exactly."}
        assert (sent["temperature"], sent["max_tokens"]) == (0.2, 64)
        argv = shlex.split(str(pg.loc("#snippet").text_content()))
        assert json.loads(argv[argv.index("-d") + 1]) == sent
        pg.loc("#tab-python").click()
        python = str(pg.loc("#snippet").text_content())
        assert "temperature=0.2," in python and "max_tokens=64," in python and '"role": "system"' in python

        pg.screenshot(artifacts / "playground-options-1280x800.png", full_page=True)
        pg.page.set_viewport_size(MOBILE)
        assert pg.page.evaluate("() => document.documentElement.scrollWidth") <= MOBILE["width"]
        pg.screenshot(artifacts / "playground-options-390x844.png", full_page=True)
        assert not pg.errors, pg.errors
    finally:
        pg.close()


def test_other_references_and_an_unavailable_model(browser: Any, site: LiveServer) -> None:
    key = site.new_key()
    pg = started(browser, site, key)
    try:
        sid = pg.stream_id()
        pg.choose_model(UNREACHABLE.id)
        pg.ask("What do you see?")
        unavailable = pg.notice("ask")  # configured but unreachable: the server says so, readably
        assert "Model unavailable" in unavailable and UNREACHABLE.id in unavailable, unavailable
        assert "cannot reach" in unavailable, unavailable
        expect(pg.loc("#answer-box")).to_be_hidden()

        pg.choose_model(OCR)
        expect(pg.loc("#model-status")).to_have_text("ready", timeout=60_000)
        # a frame picked on the scrubber: the oldest retained one
        pg.loc('#ref-mode input[value="pick"]').check(force=True)
        scrubber = pg.loc("#scrubber")
        expect(scrubber).to_be_enabled()
        oldest = int(str(scrubber.get_attribute("min")))
        scrubber.fill(str(oldest))
        expect(pg.loc("#scrub-preview img")).to_have_attribute("alt", f"frame {oldest}")
        expect(pg.loc("#snippet")).to_contain_text(f"ovs://streams/{sid}?frame_index={oldest}")
        pg.ask("Read the text")
        expect(pg.loc("#ask-notice")).to_be_hidden()
        assert thumbnails(pg) == [oldest]

        # the last 2 seconds at 2 fps: several frames, oldest first
        pg.loc('#ref-mode input[value="seconds"]').check(force=True)
        pg.loc("#ref-n").fill("2")
        pg.loc("#ref-fps").fill("2")
        expect(pg.loc("#snippet")).to_contain_text("start_offset_ms=-2000&max_fps=2")
        pg.ask("What changed?")
        expect(pg.loc("#ask-notice")).to_be_hidden()
        used = thumbnails(pg)
        assert len(used) >= 2 and used == sorted(used), used
        assert not pg.errors, pg.errors
    finally:
        pg.close()


def test_share_screen_publishes_and_stops(browser: Any, site: LiveServer) -> None:
    key = site.new_key()
    pg = Playground.open(browser, site)
    try:
        pg.set_key(key)
        expect(pg.loc("#key-status")).to_have_text("key works")
        pg.loc("#share-screen").click()
        pg.wait_for_frames()
        expect(pg.loc("#stage-badge-text")).to_have_text("SCREEN")
        sid = pg.stream_id()
        pg.loc("#stop").click()
        expect(pg.loc("#stream-state")).to_have_text("ended")
        with site.client(key) as c:
            assert c.get(f"/v1/streams/{sid}").json()["end_reason"] == "deleted"
        assert not pg.errors, pg.errors
    finally:
        pg.close()


def test_stream_ended_elsewhere_is_shown_and_the_camera_released(browser: Any, site: LiveServer) -> None:
    key = site.new_key()
    owner = site.keys.verify(key).owner  # type: ignore[union-attr]
    pg = started(browser, site, key)
    try:
        sid = pg.stream_id()
        registry = site.components.registry
        site.call(lambda: registry.end(registry.get(sid, owner), "expired"))
        expect(pg.loc("#stream-state")).to_have_text("expired")
        assert "expired" in pg.notice("camera")
        expect(pg.loc("#start-camera")).to_be_enabled()
        assert pg.loc("#preview").evaluate("v => v.srcObject") is None
        expect(pg.loc("#ask")).to_be_disabled()
        assert not pg.errors, pg.errors
    finally:
        pg.close()


def test_long_session_keeps_the_lease_and_rejoins_with_a_fresh_token(
    browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A 2 s lease kept alive by the page, and the signalling connection dropped at 12 s, after the
    first publish token (10 s) expired: the publisher must come back with a token from a keepalive."""
    from livesight.ingest.options import IngestOptions

    options = IngestOptions(drop_first_signal_after_s=12)
    with run_server(
        tmp_path_factory.mktemp("long"),
        clock=SystemClock(),
        stream_ttl_seconds=2,
        publish_token_ttl_seconds=10,
        create_app_kwargs={"ingest_options": options},
    ) as site:
        key = site.new_key()
        pg = started(browser, site, key)
        try:
            sid = pg.stream_id()
            with site.client(key) as c:

                def status() -> dict[str, Any]:
                    body: dict[str, Any] = c.get(f"/v1/streams/{sid}").json()
                    assert body["state"] == "active", body
                    return body

                first = status()
                started_at = first["created_at_ms"]
                # past the drop (12 s after the first connection), frames flow again
                wait_for(lambda: status()["last_frame_at_ms"] - started_at > 12_000, timeout=40, what="the drop")
                after_drop = status()["last_frame_index"]
                wait_for(
                    lambda: status()["last_frame_index"] >= after_drop + 20, timeout=40, what="frames after rejoin"
                )
                assert status()["publisher_connected"] is True
            expect(pg.loc("#stream-state")).to_have_text("live")
            assert not pg.errors, pg.errors
        finally:
            pg.close()
