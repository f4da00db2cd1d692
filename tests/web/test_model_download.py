"""The playground shows an in-process model's weights downloading: asking it starts the pull (503
`model_loading`, said readably), and a progress bar with bytes, speed and ETA follows GET /v1/models."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from livesight.backends.weights import Progress, WeightStore
from tests.support.server import LiveServer, run_server
from tests.web.pages import Playground

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]
pytest.importorskip("torch")
MODEL = {"id": "local/tiny", "backend": "transformers", "weights": "TinyOrg/tiny-smolvlm"}


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    release = threading.Event()

    def slow_pull(
        self: WeightStore, repo: str, revision: str = "main", progress: Any = None, select: Any = None
    ) -> object:
        for done in (4_000_000, 9_000_000):  # what a pull reports as bytes arrive
            progress(Progress("model.safetensors", done, 36_000_000, done, 36_000_000, 2_000_000.0, 13.5))
            release.wait(1)
        release.wait(60)
        raise RuntimeError("stopped by the test")

    monkeypatch.setattr(WeightStore, "pull", slow_pull)
    with run_server(tmp_path, builtin_models=[], models=[MODEL]) as live:
        yield live
        release.set()


def test_asking_a_model_not_downloaded_shows_its_download_progress(browser: Any, site: LiveServer) -> None:
    pg = Playground.open(browser, site)
    try:
        pg.set_key(site.new_key())
        pg.choose_model("local/tiny")
        expect(pg.loc("#model-status")).to_have_text("not downloaded")
        expect(pg.loc("#model-download")).to_be_hidden()
        with pg.page.expect_response(lambda r: r.url.endswith("/v1/chat/completions")) as asked:
            pg.page.evaluate(
                """(key) => fetch("/v1/chat/completions", {method: "POST", headers: {Authorization: `Bearer ${key}`,
                   "Content-Type": "application/json"}, body: JSON.stringify({model: "local/tiny",
                   messages: [{role: "user", content: "hi"}]})})""",
                pg.loc("#api-key").input_value(),
            )
        assert asked.value.status == 503
        envelope = asked.value.json()["error"]
        said = pg.page.evaluate(
            """async ([code, message]) => (await import("./assets/js/api.js")).explain(503, code, message)""",
            [envelope["code"], envelope["message"]],
        )
        assert said.startswith("Getting the model ready: model local/tiny is downloading its weights")
        expect(pg.loc("#model-status")).to_have_text("downloading", timeout=15_000)
        expect(pg.loc("#model-download")).to_be_visible()
        expect(pg.loc("#model-download-text")).to_contain_text(
            "Downloading local/tiny: 9.0 MB of 36.0 MB (25%) · 2.0 MB/s · about 0:14 left", timeout=15_000
        )
        assert pg.loc("#model-download-bar").evaluate("(bar) => bar.value") == pytest.approx(0.25)
    finally:
        pg.close()
