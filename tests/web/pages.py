"""Driving the playground like a person: a thin wrapper over a Playwright page (locators only, so
the page's Content-Security-Policy stays on: no string evaluation in the page)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.support.server import LiveServer

DESKTOP = {"width": 1280, "height": 800}
MOBILE = {"width": 390, "height": 844}


@dataclass
class Playground:
    page: Any
    server: LiveServer
    requests: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @classmethod
    def open(
        cls, browser: Any, server: LiveServer, *, viewport: dict[str, int] = DESKTOP, path: str = "/"
    ) -> Playground:
        context = browser.new_context(viewport=viewport, device_scale_factor=1)
        page = context.new_page()
        pg = cls(page, server)
        page.on("request", lambda r: pg.requests.append(r))
        page.on("pageerror", lambda e: pg.errors.append(str(e)))
        page.goto(server.base_url + path)
        expect(page.locator("body")).to_have_attribute("data-ready", "1")
        return pg

    def close(self) -> None:
        self.page.context.close()

    def loc(self, selector: str) -> Any:
        return self.page.locator(selector)

    def set_key(self, key: str) -> None:
        self.loc("#api-key").fill(key)
        self.loc("#api-key").press("Enter")

    def start_camera(self) -> None:
        self.loc("#start-camera").click()

    def wait_for_frames(self, timeout_ms: int = 30_000) -> None:
        expect(self.loc("#t-last")).to_have_text(re.compile(r"^#\d"), timeout=timeout_ms)
        expect(self.loc("#ask")).to_be_enabled()

    def stream_id(self) -> str:
        expect(self.loc("#stream-id")).to_have_text(re.compile(r"^[0-9a-f-]{36}$"))
        return str(self.loc("#stream-id").text_content())

    def choose_model(self, model_id: str) -> None:
        expect(self.loc(f'#model option[value="{model_id}"]')).to_have_count(1, timeout=15_000)
        self.loc("#model").select_option(model_id)

    def ask(self, question: str, timeout_ms: int = 90_000) -> str:
        self.loc("#question").fill(question)
        self.loc("#ask").click()
        expect(self.loc("#answer")).to_have_attribute("data-state", "done", timeout=timeout_ms)
        return str(self.loc("#answer").text_content())

    def notice(self, which: str) -> str:
        node = self.loc(f"#{which}-notice")
        expect(node).to_be_visible()
        return str(node.text_content())

    def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def request_urls(self) -> list[str]:
        return [r.url for r in self.requests]
