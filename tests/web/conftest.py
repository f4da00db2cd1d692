"""Browser tests of the playground: Playwright for Python driving Debian's /usr/bin/chromium (never a
downloaded browser), with a fake camera, inside the private network namespace that scripts/netns
makes (tests marked `browser`; those that publish video are also marked `webrtc`).

Outside that namespace, or without chromium / livekit-client, they skip with the reason on a developer
machine and fail in CI (CI=true), so CI can never pass without running them. Screenshots go to
`test-artifacts/` at the repository root (gitignored)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.media_env import CHROMIUM, CHROMIUM_FLAGS, require_browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
# answer the camera prompt with "allow", and the screen picker with the (fake) entire screen
GRANT_CAMERA = ["--use-fake-ui-for-media-stream", "--auto-select-desktop-capture-source=Entire screen"]


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Any]:
    """One Playwright driver per session (the sync API allows one at a time per thread)."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


def _launch(pw: Any, extra: list[str]) -> Iterator[Any]:
    browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS + extra)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="module")
def browser(playwright_driver: Any) -> Iterator[Any]:
    """Chromium whose fake camera is granted without a prompt."""
    yield from _launch(playwright_driver, GRANT_CAMERA)


@pytest.fixture(scope="module")
def browser_denying_camera(playwright_driver: Any) -> Iterator[Any]:
    """Chromium without the auto-accept flag: headless, the camera permission prompt is denied."""
    yield from _launch(playwright_driver, [])


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
