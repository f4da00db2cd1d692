"""The playground in Chromium, without publishing video: key entry, models and their status, readable
errors (bad key, camera denied, livekit-client missing), and the curl / Python snippets."""

from __future__ import annotations

import ast
import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from livesight.settings import ModelConfig
from tests.support.server import LiveServer, run_server
from tests.web.pages import MOBILE, Playground

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]
UNREACHABLE = ModelConfig(id="Qwen/Qwen3-VL-8B-Instruct", base_url="http://127.0.0.1:9/v1", profile="vllm")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with run_server(tmp_path_factory.mktemp("page"), models=[UNREACHABLE]) as live:
        yield live


@pytest.fixture
def pg(browser: Any, site: LiveServer) -> Iterator[Playground]:
    page = Playground.open(browser, site)
    yield page
    page.close()
    assert not page.errors, page.errors


def test_bad_key_is_rejected_readably_and_a_good_key_is_kept_in_local_storage_only(
    pg: Playground, site: LiveServer
) -> None:
    expect(pg.loc("#key-status")).to_have_text("no key")
    pg.set_key("ovs-not-a-real-key")
    expect(pg.loc("#key-status")).to_have_text("key rejected")
    assert "API key was rejected" in pg.notice("camera")
    key = site.new_key()
    pg.set_key(key)
    expect(pg.loc("#key-status")).to_have_text("key works")
    expect(pg.loc("#camera-notice")).to_be_hidden()
    assert pg.page.evaluate("() => localStorage.getItem('livesight.apiKey')") == key
    pg.page.reload()
    expect(pg.loc("#api-key")).to_have_value(key)
    expect(pg.loc("#key-status")).to_have_text("key works")
    assert not [u for u in pg.request_urls() if key in u], "the key must never be in a URL"
    pg.loc("#key-forget").click()
    expect(pg.loc("#key-status")).to_have_text("no key")
    assert pg.page.evaluate("() => localStorage.getItem('livesight.apiKey')") is None


def test_models_are_listed_with_their_status(pg: Playground, site: LiveServer) -> None:
    with site.client() as c:
        listed = {m["id"]: m["status"] for m in c.get("/v1/models").json()["data"]}
    assert listed[UNREACHABLE.id] == "unavailable"
    for model_id, status in listed.items():
        pg.choose_model(model_id)
        expect(pg.loc("#model-status")).to_have_text(status)
    expect(pg.loc(f'#model option[value="{UNREACHABLE.id}"]')).to_have_text(f"{UNREACHABLE.id} (unavailable)")


def test_start_without_a_key_says_where_to_find_one(pg: Playground) -> None:
    pg.start_camera()
    assert "Paste your API key first" in pg.notice("camera")
    expect(pg.loc("#stream-state")).to_have_text("idle")


def test_denied_camera_is_explained_and_no_stream_is_left_behind(browser_denying_camera: Any, site: LiveServer) -> None:
    key = site.new_key()
    owner = site.keys.verify(key).owner  # type: ignore[union-attr]
    pg = Playground.open(browser_denying_camera, site)
    try:
        pg.set_key(key)
        expect(pg.loc("#key-status")).to_have_text("key works")
        pg.start_camera()
        assert "Camera access was denied" in pg.notice("camera")
        expect(pg.loc("#stream-state")).to_have_text("idle")
        expect(pg.loc("#start-camera")).to_be_enabled()
        assert site.components.registry.active_count(owner) == 0
    finally:
        pg.close()


def test_missing_livekit_client_tells_how_to_install_it(browser: Any, site: LiveServer) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.route("**/assets/vendor/livekit-client.umd.js", lambda route: route.fulfill(status=404, body="/* */"))
    try:
        page.goto(site.base_url + "/playground")
        banner = page.locator("#global-error")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("make setup")
        page.locator("#api-key").fill(site.new_key())
        page.locator("#api-key").press("Enter")
        page.locator("#start-camera").click()
        expect(page.locator("#camera-notice")).to_contain_text("livekit-client is not installed")
    finally:
        context.close()


TRICKY = [
    "What do you see?",
    'It\'s "quoted" and back\\slashed',
    "line one\nline two\ttabbed",
    "unicode: é, 漢字, emoji 🎥, $HOME, `cmd`, $(rm -rf /)",
]


@pytest.mark.parametrize("question", TRICKY)
@pytest.mark.parametrize(
    "ref",
    [{"mode": "latest"}, {"mode": "seconds", "seconds": 5, "fps": 0.5}, {"mode": "pick", "frameIndex": 42}],
    ids=["latest", "seconds", "pick"],
)
def test_snippets_carry_exactly_the_request(pg: Playground, question: str, ref: dict[str, Any]) -> None:
    """The curl body parses back to the request; the Python code parses and passes the same values."""
    got = pg.page.evaluate(
        """async ([question, ref]) => {
            const s = await import("./assets/js/snippets.js");
            const streamId = "0b5c6a0e-1111-4222-8333-444455556666";
            const body = s.chatRequest({model: "livesight/ocr", question, streamId, ref});
            return {body, curl: s.curlSnippet("http://h:1/v1", body), python: s.pythonSnippet("http://h:1/v1", body)};
        }""",
        [question, ref],
    )
    body = got["body"]
    part = body["messages"][0]["content"][1]
    url = part.get("image_url", part.get("video_url", {}))["url"]
    assert url.startswith("ovs://streams/0b5c6a0e-1111-4222-8333-444455556666?")
    assert (part["type"] == "video_url") == (ref["mode"] == "seconds")
    argv = shlex.split(got["curl"])
    assert argv[:3] == ["curl", "-N", "http://h:1/v1/chat/completions"]
    assert "Bearer $LIVESIGHT_API_KEY" in got["curl"]
    assert json.loads(argv[argv.index("-d") + 1]) == body
    tree = ast.parse(got["python"])
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "create")
    kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    assert kwargs == body
    assert 'os.environ["LIVESIGHT_API_KEY"]' in got["python"]


def test_page_snippet_never_contains_the_key(pg: Playground, site: LiveServer) -> None:
    key = site.new_key()
    pg.set_key(key)
    expect(pg.loc("#key-status")).to_have_text("key works")
    for tab in ("#tab-curl", "#tab-python"):
        pg.loc(tab).click()
        text = str(pg.loc("#snippet").text_content())
        assert key not in text
        assert "LIVESIGHT_API_KEY" in text


@pytest.mark.parametrize("viewport", ["desktop", "mobile"])
def test_screenshot_before_start(browser: Any, site: LiveServer, artifacts: Path, viewport: str) -> None:
    pg = Playground.open(browser, site, viewport=MOBILE if viewport == "mobile" else {"width": 1280, "height": 800})
    try:
        pg.set_key(site.new_key())
        expect(pg.loc("#key-status")).to_have_text("key works")
        width = pg.page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= pg.page.viewport_size["width"], "the page must not scroll sideways"
        pg.screenshot(artifacts / f"playground-idle-{viewport}.png", full_page=True)
    finally:
        pg.close()


def test_snippets_carry_the_options(pg: Playground) -> None:
    """A system prompt comes first in `messages`; sampling fields are top-level OpenAI fields, in both snippets."""
    got = pg.page.evaluate(
        """async () => {
            const s = await import("./assets/js/snippets.js");
            const o = await import("./assets/js/options.js");
            const options = o.readOptions({system: " Answer in 'one' word. ", temperature: "0.2", maxTokens: "64"});
            const body = s.chatRequest({model: "m", question: "q", streamId: "sid", ref: {mode: "latest"}, options});
            const bad = o.readOptions({system: "", temperature: "2.5", maxTokens: "1.5"});
            const base = "http://h:1/v1";
            return {body, curl: s.curlSnippet(base, body), python: s.pythonSnippet(base, body), bad};
        }"""
    )
    body = got["body"]
    assert body["messages"][0] == {"role": "system", "content": "Answer in 'one' word."}
    assert body["messages"][1]["role"] == "user"
    assert (body["temperature"], body["max_tokens"]) == (0.2, 64)
    argv = shlex.split(got["curl"])
    assert json.loads(argv[argv.index("-d") + 1]) == body
    calls = [n for n in ast.walk(ast.parse(got["python"])) if isinstance(n, ast.Call)]
    call = next(n for n in calls if getattr(n.func, "attr", "") == "create")
    assert {k.arg: ast.literal_eval(k.value) for k in call.keywords} == body
    assert got["bad"]["fields"] == {}
    assert got["bad"]["problems"] == [
        "Temperature must be a number from 0 to 2.",
        "Max tokens must be a whole number from 1 to 1,000,000.",
    ]


def test_options_panel_defaults_to_nothing_sent_and_fills_the_page_snippet(pg: Playground) -> None:
    def snippet_body() -> dict[str, Any]:
        pg.loc("#tab-curl").click()
        argv = shlex.split(str(pg.loc("#snippet").text_content()))
        return dict(json.loads(argv[argv.index("-d") + 1]))

    expect(pg.loc("#options")).not_to_have_attribute("open", "")
    expect(pg.loc("#opt-temperature")).to_be_hidden()  # collapsed
    expect(pg.loc("#options-summary")).to_have_text("model defaults")
    default = snippet_body()
    assert [m["role"] for m in default["messages"]] == ["user"]
    assert not {"temperature", "max_tokens"} & set(default)

    pg.loc("#options summary").click()
    pg.loc("#opt-system").fill("Answer in one word.")
    pg.loc("#opt-temperature").fill("0.3")
    pg.loc("#opt-max-tokens").fill("50")
    expect(pg.loc("#options-summary")).to_have_text("3 set")
    body = snippet_body()
    assert body["messages"][0] == {"role": "system", "content": "Answer in one word."}
    assert (body["temperature"], body["max_tokens"]) == (0.3, 50)
    pg.loc("#tab-python").click()
    assert "temperature=0.3," in str(pg.loc("#snippet").text_content())

    pg.loc("#opt-temperature").fill("7")
    expect(pg.loc("#options-summary")).to_have_text("check the values")
    assert "temperature" not in snippet_body()
