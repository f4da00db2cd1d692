"""The playground's routes: served without auth at / and /playground, its assets under /assets/,
never in the OpenAPI document, and never hiding the JSON 404 of an unknown path."""

from __future__ import annotations

import http.client
import logging
import re
import shutil
from pathlib import Path
from urllib.parse import urljoin, urlsplit

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
    assert {"assets/js/streams.js", "assets/js/viewer.js"} <= seen  # the Streams card and its live viewer


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


NOT_FOUND = (404, "application/json", b'{"detail":"Not Found"}')
ODD_ASSET_PATHS = [
    "/assets/%00.js",
    "/assets/js/app.js%00",
    "/assets/js/%00/app.js",
    "/assets/..",
    "/assets/../api/web.py",
    "/assets/js/../../../api/web.py",
    "/assets/%2e%2e/__init__.py",
    "/assets/%2e%2e%2f%2e%2e%2fapi%2fweb.py",
    "/assets/js%5capp.js",
    "/assets/js\\app.js",
    "/assets/%ff.js",
    "/assets/%c3%28.js",
    "/assets/.hidden.js",
    "/assets/js/./app.js",
    "/assets//js/app.js",
    "/assets/" + "a" * 5000 + ".js",
    "/assets/" + "a/" * 2000 + "b.js",
    "/assets/vendor/swagger-ui/%00.js",
    "/assets/vendor/swagger-ui/../../index.html",
]


def test_odd_asset_paths_are_the_json_404_without_a_traceback(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Sent byte for byte (http.client normalises nothing), so the server sees each path as written here."""
    caplog.set_level(logging.INFO)
    for path in ODD_ASSET_PATHS:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            conn.putrequest("GET", path, skip_accept_encoding=True)
            conn.endheaders()
            r = conn.getresponse()
            body = r.read()
        finally:
            conn.close()
        assert (r.status, r.getheader("content-type"), body) == NOT_FOUND, path
    assert not [rec for rec in caplog.records if rec.exc_info or rec.levelno >= logging.ERROR]


def test_docs_loads_only_files_this_server_serves(server: LiveServer) -> None:
    with server.client() as c:
        page = c.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
        refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert len(refs) >= 3 and "<script>" not in page.text  # no inline script: the CSP forbids it
        want = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".json": "application/json"}
        for ref in refs:
            url = urljoin(f"{server.base_url}/docs", ref)
            assert url.startswith(server.base_url + "/"), ref  # same origin: no CDN
            r = c.get(urlsplit(url).path)
            assert r.status_code == 200, ref
            assert r.headers["content-type"].split(";")[0] == want[Path(ref).suffix], ref
            if ref.endswith("docs.js"):
                assert re.search(r'"openapi\.json"', r.text)
                assert "validatorUrl: null" in r.text
        assert "SwaggerUIBundle" in c.get("/assets/vendor/swagger-ui/swagger-ui-bundle.js").text
        assert c.get("/openapi.json").status_code == 200


@pytest.mark.parametrize("path", ["/redoc", "/docs/oauth2-redirect", "/assets/vendor/swagger-ui/index.html"])
def test_no_other_docs_page_is_served(server: LiveServer, path: str) -> None:
    """ReDoc would load its bundle and fonts from CDNs: it is off, as is what Swagger UI does not need."""
    with server.client() as c:
        r = c.get(path)
    assert r.status_code == 404
    assert r.json() == {"detail": "Not Found"}


def test_missing_swagger_ui_says_how_to_install_it(tmp_path: Path) -> None:
    shutil.copytree(STATIC, tmp_path / "static")
    with TestClient(_app(tmp_path)) as c:
        page = c.get("/docs")
        assert page.status_code == 200 and "make setup" in page.text  # shown until Swagger UI replaces it
        for name, kind in (("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css")):
            r = c.get(f"/assets/vendor/swagger-ui/{name}")
            assert r.status_code == 404
            assert "make setup" in r.text and r.headers["content-type"].startswith(kind)


def test_page_routes_are_not_in_the_openapi_document(server: LiveServer) -> None:
    with server.client() as c:
        paths = c.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p in ("/", "/playground", "/docs", "/redoc") or p.startswith("/assets")]


def test_api_still_needs_a_key(server: LiveServer) -> None:
    with server.client() as c:
        assert c.post("/v1/streams").status_code == 401


def _app(root: Path) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None)
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
