"""A fake Hugging Face Hub on 127.0.0.1: the model API, `resolve` URLs and a CDN on another port.

Like the real hub: `GET /api/models/{repo}/revision/{rev}?blobs=true` lists the commit and its files
(`size`, `blobId`, and `lfs.sha256` for LFS files); an unknown repo is 401 with `X-Error-Code:
RepoNotFound` (the hub does not say whether a private repo exists), an unknown revision 404
`RevisionNotFound`. `GET /{repo}/resolve/{rev}/{path}` answers small files itself and redirects LFS files
(302) to the CDN, a second server, which honours `Range: bytes=N-` with 206. Switches on the CDN:
`die_after` (bytes of a file sent before the connection is dropped, once), `corrupt` (paths served with
a flipped byte), `ignore_range` (always 200, whole file). Every request is recorded with its headers.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@dataclass
class FakeRepo:
    files: dict[str, bytes]
    lfs: set[str] = field(default_factory=set)
    commit: str = COMMIT
    listed: dict[str, dict[str, object]] = field(default_factory=dict)  # overrides of a sibling's fields


@dataclass
class Seen:
    url: str
    headers: dict[str, str]


@dataclass
class FakeHub:
    repos: dict[str, FakeRepo] = field(default_factory=dict)
    die_after: dict[str, int] = field(default_factory=dict)
    corrupt: set[str] = field(default_factory=set)
    ignore_range: bool = False
    gated: set[str] = field(default_factory=set)  # repos that need a token (any token here is refused)
    requests: list[Seen] = field(default_factory=list)
    base_url: str = ""
    cdn_url: str = ""

    def hub_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/models/{org}/{name}/revision/{rev}", self._api),
                Route("/{org}/{name}/resolve/{rev}/{path:path}", self._resolve),
            ]
        )

    def cdn_app(self) -> Starlette:
        return Starlette(routes=[Route("/blobs/{org}/{name}/{path:path}", self._blob)])

    def _seen(self, request: Request) -> None:
        self.requests.append(Seen(str(request.url), {k.lower(): v for k, v in request.headers.items()}))

    def _repo(self, request: Request) -> FakeRepo | None:
        return self.repos.get(f"{request.path_params['org']}/{request.path_params['name']}")

    async def _api(self, request: Request) -> Response:
        self._seen(request)
        repo = self._repo(request)
        if repo is None:
            return JSONResponse({"error": "Repository not found"}, 401, headers={"X-Error-Code": "RepoNotFound"})
        if f"{request.path_params['org']}/{request.path_params['name']}" in self.gated:
            if "authorization" in request.headers:
                return JSONResponse({"error": "Invalid credentials in Authorization header"}, 401)
            return JSONResponse({"error": "Access restricted"}, 401, headers={"X-Error-Code": "GatedRepo"})
        if request.path_params["rev"] not in ("main", repo.commit):
            return JSONResponse({"error": "Invalid rev id"}, 404, headers={"X-Error-Code": "RevisionNotFound"})
        siblings = []
        for path, data in repo.files.items():
            sibling: dict[str, object] = {"rfilename": path, "size": len(data), "blobId": git_blob_id(data)}
            if path in repo.lfs:
                sibling["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            sibling.update(repo.listed.get(path, {}))
            siblings.append(sibling)
        return JSONResponse({"id": "x", "sha": repo.commit, "siblings": siblings})

    async def _resolve(self, request: Request) -> Response:
        self._seen(request)
        repo = self._repo(request)
        path = request.path_params["path"]
        if repo is None or path not in repo.files:
            return JSONResponse({"error": "Entry not found"}, 404, headers={"X-Error-Code": "EntryNotFound"})
        if path in repo.lfs:
            org, name = request.path_params["org"], request.path_params["name"]
            return RedirectResponse(f"{self.cdn_url}/blobs/{org}/{name}/{path}", status_code=302)
        return Response(repo.files[path], media_type="application/octet-stream")

    async def _blob(self, request: Request) -> Response:
        self._seen(request)
        repo = self._repo(request)
        path = request.path_params["path"]
        if repo is None or path not in repo.files:
            return Response(status_code=404)
        data = repo.files[path]
        if path in self.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        ranged = request.headers.get("range", "")
        if ranged and not self.ignore_range:
            start = int(ranged.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                return Response(status_code=416, headers={"Content-Range": f"bytes */{len(data)}"})
        body = data[start:]
        headers = {"Content-Length": str(len(body)), "Accept-Ranges": "bytes"}
        status = 200
        if start:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        cut = self.die_after.pop(path, None)
        if cut is None:
            return Response(body, status, headers=headers, media_type="application/octet-stream")
        return StreamingResponse(_dying(body[: max(0, cut - start)]), status, headers=headers)


async def _dying(sent: bytes) -> AsyncIterator[bytes]:
    yield sent
    raise ConnectionResetError("the fake CDN drops the connection mid-file")


@contextlib.contextmanager
def serve(app: Starlette, name: str) -> Iterator[str]:
    """`app` on 127.0.0.1, port 0, in a background thread; its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def run_fake_hub(**kwargs: object) -> Iterator[FakeHub]:
    hub = FakeHub(**kwargs)  # type: ignore[arg-type]
    with serve(hub.hub_app(), "fake-hub") as base, serve(hub.cdn_app(), "fake-cdn") as cdn:
        hub.base_url, hub.cdn_url = base, cdn
        yield hub
