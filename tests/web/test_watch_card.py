"""The playground's Watch card in Chromium: start a watch on a stream, see results stream in with the
thumbnail of the frame each used, stop it (the watch is deleted)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from livesight.settings import ModelConfig
from tests.support.fake_upstream import MODEL, run_fake_upstream
from tests.support.frames import push_frames
from tests.support.server import LiveServer, run_server
from tests.web.pages import Playground

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with run_fake_upstream() as fake:
        model = ModelConfig(id="qwen", base_url=fake.base_url, upstream_model=MODEL, profile="vllm")
        with run_server(tmp_path_factory.mktemp("watch"), models=[model], builtin_models=[]) as live:
            yield live


def test_watch_card_streams_results_with_thumbnails_then_stops(browser: Any, site: LiveServer) -> None:
    key = site.new_key()
    with site.client(key) as c:
        stream_id = c.post("/v1/streams").json()["id"]
    push_frames(site, stream_id, [0, 100, 200])
    pg = Playground.open(browser, site)
    try:
        pg.set_key(key)
        pg.choose_model("qwen")
        pg.loc("#question").fill("Is the door open?")
        pg.loc("#watch-stream").fill(stream_id)
        pg.loc("#watch-every").fill("0.25")
        pg.loc("#watch-start").click()
        expect(pg.loc("#watch-state")).to_have_text("watching")
        first = pg.loc(".watch-result").first
        expect(first).to_contain_text(re.compile(r"#1 · frame #2: .*Is the door open\?"), timeout=20_000)
        expect(first.locator("img")).to_have_count(1, timeout=20_000)  # the thumbnail of frame 2
        push_frames(site, stream_id, [300, 400])  # a new newest frame: another run (only_on_new_frames)
        expect(pg.loc('.watch-result[data-seq="2"]')).to_contain_text("frame #4", timeout=20_000)
        pg.loc("#watch-stop").click()
        expect(pg.loc("#watch-state")).to_have_text("stopped")
        with site.client(key) as c:
            (watch,) = c.get("/v1/watches").json()["data"]
        assert watch["state"] == "ended" and watch["end_reason"] == "deleted"
        assert pg.errors == []
    finally:
        pg.close()
