"""The playground's routes: served without auth at / and /playground, its assets under /assets/,
never in the OpenAPI document, and never hiding the JSON 404 of an unknown path."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from livesight.api import web
from tests.support.server import LiveServer

pytestmark = pytest.mark.timeout(30)
STATIC = web.WEB_DIR / "static"


@pytest.mark.parametrize("path", ["/", "/playground"])
def test_page_is_served_without_a_key(server: LiveServer, path: str) -> None:
    with server.client() as c:
        r = c.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "<title>livesight playground</title>" in r.text
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"


def test_every_file_the_page_loads_is_served(server: LiveServer) -> None:
    """Follow the page's <script>/<link> references and every JS module import, relative to /playground."""
    html = (STATIC / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="(assets/[^"]+)"', html)
    assert "assets/vendor/livekit-client.umd.js" in refs and "assets/js/app.js" in refs
    seen: set[str] = set()
    with server.client() as c:
        todo = [r for r in refs if not r.startswith("assets/vendor/")]
        while todo:
            ref = todo.pop()
            if ref in seen:
                continue
            seen.add(ref)
            r = c.get(f"/{ref}")
            assert r.status_code == 200, ref
            assert r.headers["content-type"].split(";")[0] in ("text/css", "text/javascript", "image/svg+xml"), ref
            if ref.endswith(".js"):
                base = ref.rsplit("/", 1)[0]
                todo += [f"{base}/{m}" for m in re.findall(r'from "\./([^"]+)"', r.text)]
    assert {"assets/js/api.js", "assets/js/chat.js", "assets/js/publisher.js", "assets/js/snippets.js"} <= seen


@pytest.mark.parametrize(
    "path",
    ["/nope", "/v1/nope", "/assets/nope.js", "/assets/../api/web.py", "/assets/%2e%2e/__init__.py", "/playground/"],
)
def test_unknown_paths_keep_the_json_404(server: LiveServer, path: str) -> None:
    with server.client() as c:
        r = c.get(path)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    assert r.json()["detail"] == "Not Found"  # under /v1 also `message` (tests/api/test_errors.py)


def test_page_routes_are_not_in_the_openapi_document(server: LiveServer) -> None:
    with server.client() as c:
        paths = c.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p in ("/", "/playground") or p.startswith("/assets")]


def test_api_still_needs_a_key(server: LiveServer) -> None:
    with server.client() as c:
        assert c.post("/v1/streams").status_code == 401


def _app(root: Path) -> FastAPI:
    app = FastAPI()
    app.include_router(web.build_router(web.WebFiles(root)))
    return app


def test_missing_livekit_client_says_how_to_install_it(tmp_path: Path) -> None:
    shutil.copytree(STATIC, tmp_path / "static")
    with TestClient(_app(tmp_path)) as c:
        r = c.get("/assets/vendor/livekit-client.umd.js")
        assert r.status_code == 404
        assert "make setup" in r.text and "npm ci --prefix src/livesight/web" in r.text
        assert r.headers["content-type"].startswith("text/javascript")
        # the page itself still loads, and carries the text it shows in that case
        assert c.get("/").status_code == 200
        assert "make setup" in c.get("/assets/js/app.js").text


def test_installed_livekit_client_is_served_from_node_modules(tmp_path: Path) -> None:
    shutil.copytree(STATIC, tmp_path / "static")
    umd = tmp_path / web.LIVEKIT_CLIENT_JS
    umd.parent.mkdir(parents=True)
    umd.write_text("/* livekit-client stand-in */")
    with TestClient(_app(tmp_path)) as c:
        r = c.get("/assets/vendor/livekit-client.umd.js")
    assert r.status_code == 200
    assert r.text == "/* livekit-client stand-in */"


def test_livekit_client_is_not_vendored() -> None:
    """livekit-client comes from npm at setup time: no copy of it among the page's own files."""
    for path in STATIC.rglob("*"):
        if path.is_file():
            assert "livekit" not in path.name.lower(), path
            assert path.stat().st_size < 100_000, path
