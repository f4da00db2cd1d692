"""The playground: a static page at `/` and `/playground`, its files under `/assets/`; and the API
reference at `/docs` (Swagger UI, served from this origin: nothing is fetched from a CDN).

No auth (the page is static; the API key lives in the browser's localStorage and travels only in
`Authorization` headers), no OpenAPI entries, and only exact paths: an unknown path, API or not,
still gets the JSON 404 envelope.

livekit-client is not vendored: `make setup` installs it from npm into `src/livesight/web/node_modules`
and `/assets/vendor/livekit-client.umd.js` serves it from there. When that file is missing the route
answers 404 with a JavaScript comment body and the page shows how to install it (`make setup`).
Swagger UI comes the same way (npm `swagger-ui-dist`, under `/assets/vendor/swagger-ui/`); `/docs` is
our own page (its script is `static/js/docs.js`, so the CSP allows no inline script), and `/redoc` is off.

Asset names are checked before any file system call: path segments of letters, digits, `_`, `-` and
`.` (never first), a known suffix, 200 characters at most. Anything else (NUL, `..`, backslashes,
undecodable bytes) is the same JSON 404 as an unknown path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
LIVEKIT_CLIENT_JS = Path("node_modules/livekit-client/dist/livekit-client.umd.js")
SWAGGER_UI_DIR = Path("node_modules/swagger-ui-dist")
SWAGGER_UI_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")
INSTALL_HINT = "livekit-client is not installed: run `make setup` (it runs `npm ci --prefix src/livesight/web`)"
SWAGGER_INSTALL_HINT = (
    "swagger-ui-dist is not installed: run `make setup` (it runs `npm ci --prefix src/livesight/web`)"
)
_ASSET_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*(?:/[A-Za-z0-9_-][A-Za-z0-9._-]*)*")
_MAX_ASSET_NAME = 200

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}

# The page talks only to its own origin, plus the publish URL's ws(s):// (which may be another host
# when an external LiveKit server is configured). Images are blob: URLs of fetched frames.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob: mediastream:",
        "connect-src 'self' ws: wss: http: https:",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
# /docs: Swagger UI renders with inline style attributes and data: images; it fetches only openapi.json
# (and, with "Try it out", the API itself) from this origin.
DOCS_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
DOCS_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>livesight API reference</title>
<link rel="icon" href="assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="assets/vendor/swagger-ui/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"><p style="font-family:sans-serif;margin:2em">Loading the API reference&hellip; If this
stays, Swagger UI is not installed: run <code>make setup</code>. The document itself is
<a href="openapi.json">openapi.json</a>.</p></div>
<script src="assets/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="assets/js/docs.js"></script>
</body>
</html>
"""
HEADERS = {
    "Cache-Control": "no-cache",  # revalidate (ETag) so an upgrade is picked up at once
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class WebFiles:
    """Where the page's files are: `static/` beside this package, and npm's `node_modules/`."""

    root: Path = WEB_DIR

    @property
    def static(self) -> Path:
        return self.root / "static"

    @property
    def livekit_client(self) -> Path:
        return self.root / LIVEKIT_CLIENT_JS

    @property
    def swagger_ui(self) -> Path:
        return self.root / SWAGGER_UI_DIR

    def asset(self, name: str) -> Path:
        """The file under static/ named by `name`, refusing anything that is not a clean name inside it."""
        if len(name) > _MAX_ASSET_NAME or not _ASSET_NAME.fullmatch(name):
            raise HTTPException(404)  # the same JSON 404 as any unknown path
        base = self.static.resolve()
        path = (base / name).resolve()
        if not path.is_relative_to(base) or not path.is_file() or path.suffix not in _TYPES:
            raise HTTPException(404)
        return path


def build_router(files: WebFiles | None = None) -> APIRouter:
    files = files or WebFiles()
    router = APIRouter(include_in_schema=False)

    def page() -> Response:
        return FileResponse(
            files.static / "index.html",
            media_type=_TYPES[".html"],
            headers={**HEADERS, "Content-Security-Policy": CSP},
        )

    @router.get("/")
    async def root() -> Response:
        return page()

    @router.get("/playground")
    async def playground() -> Response:
        return page()

    @router.get("/assets/vendor/livekit-client.umd.js")
    async def livekit_client() -> Response:
        path = files.livekit_client
        if not path.is_file():
            body = f"/* {INSTALL_HINT} */\n"
            return Response(body, status_code=404, media_type=_TYPES[".js"], headers=HEADERS)
        return FileResponse(path, media_type=_TYPES[".js"], headers=HEADERS)

    @router.get("/docs")
    async def docs() -> Response:
        return Response(DOCS_HTML, media_type=_TYPES[".html"], headers={**HEADERS, "Content-Security-Policy": DOCS_CSP})

    @router.get("/assets/vendor/swagger-ui/{name}")
    async def swagger_ui(name: str) -> Response:
        if name not in SWAGGER_UI_FILES:
            raise HTTPException(404)
        path = files.swagger_ui / name
        if not path.is_file():
            body = f"/* {SWAGGER_INSTALL_HINT} */\n"
            return Response(body, status_code=404, media_type=_TYPES[Path(name).suffix], headers=HEADERS)
        return FileResponse(path, media_type=_TYPES[Path(name).suffix], headers=HEADERS)

    @router.get("/assets/{name:path}")
    async def asset(name: str) -> Response:
        path = files.asset(name)
        return FileResponse(path, media_type=_TYPES[path.suffix], headers=HEADERS)

    return router
