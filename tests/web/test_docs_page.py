"""/docs in Chromium, offline: Swagger UI renders every operation of the OpenAPI document while any
request that leaves this server is aborted (and none is made), and the page's CSP blocks nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.server import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    yield context.new_page()
    context.close()


def test_docs_renders_every_operation_with_no_external_request(page: Any, server: LiveServer) -> None:
    outside: list[str] = []
    console: list[str] = []

    def only_this_server(route: Any) -> None:
        if route.request.url.startswith(server.base_url + "/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.on("console", lambda m: console.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: console.append(str(e)))
    page.goto(f"{server.base_url}/docs")
    with server.client() as c:
        spec = c.get("/openapi.json").json()
    operations = [(m.upper(), p) for p, item in spec["paths"].items() for m in item if m != "parameters"]
    blocks = page.locator(".opblock")
    expect(blocks).to_have_count(len(operations), timeout=30_000)
    expect(page.locator(".info .title")).to_contain_text("livesight")
    shown = {
        (b.locator(".opblock-summary-method").inner_text(), b.get_attribute("id")) for b in blocks.all()
    }  # ids like "operations-streams-create_stream_v1_streams_post"
    assert len(shown) == len(operations)
    assert "/v1/streams" in page.locator(".opblock-summary-path").all_inner_texts()
    assert not outside, outside
    assert not [m for m in console if "Content Security Policy" in m or "Refused" in m], console
