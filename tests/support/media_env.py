"""What the WebRTC and browser tests need, in one place: the private network namespace, Debian's
chromium (never a downloaded browser) and the npm livekit-client build. Missing pieces skip the test
with the reason on a developer machine and fail it in CI (CI=true), so CI never passes without them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from livesight.api.web import LIVEKIT_CLIENT_JS, WEB_DIR

CHROMIUM = Path("/usr/bin/chromium")
LIVEKIT_UMD = WEB_DIR / LIVEKIT_CLIENT_JS
# Headless Chromium that talks to nothing outside the test: no background traffic, raw IP candidates.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]


def missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: these tests must run)", pytrace=False)
    pytest.skip(reason)


def require_namespace() -> None:
    if os.environ.get("LIVESIGHT_NETNS") != "1":
        missing("WebRTC and browser tests run inside a private network namespace: run scripts/netns (as root)")


def require_browser() -> None:
    require_namespace()
    if not CHROMIUM.exists():
        missing("Debian chromium is not installed (make test installs it when run as root)")
    if not LIVEKIT_UMD.exists():
        missing("livekit-client is not installed: npm ci --prefix src/livesight/web (make setup)")
