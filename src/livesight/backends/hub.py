"""The Hugging Face Hub's model API over plain HTTP: which files a revision has, and where each one is.

`GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true` answers the commit (`sha`) and `siblings`,
each with `rfilename`, `size`, its git `blobId` and, for LFS files, `lfs.sha256`; the bytes are at
`{endpoint}/{repo}/resolve/{commit}/{path}` (LFS files redirect to a CDN). `weights.py` does the fetching.
A file name from the listing is used as a path under the model directory only when it stays inside it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol
from urllib.parse import quote

import httpx

from livesight.core.errors import WeightsUnavailable

MANIFEST = ".livesight-model.json"
REPO_ID = re.compile(r"(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*")


class Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


@dataclass(frozen=True, slots=True)
class RemoteFile:
    path: str
    size: int
    sha256: str | None  # LFS files
    blob_id: str | None  # git blob sha1 (the others)

    def hasher(self) -> Hash | None:
        if self.sha256:
            return hashlib.sha256()
        if self.blob_id:
            h = hashlib.sha1(usedforsecurity=False)
            h.update(b"blob %d\0" % self.size)
            return h
        return None

    @property
    def expected(self) -> str | None:
        return self.sha256 or self.blob_id

    def record(self) -> dict[str, object]:
        return {"size": self.size, "sha256": self.sha256, "blob_id": self.blob_id}


@dataclass(frozen=True, slots=True)
class RepoListing:
    repo: str
    revision: str
    commit: str
    files: tuple[RemoteFile, ...]

    @property
    def total(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True, slots=True)
class FileSelection:
    """Which files of a model repository one runtime needs. Patterns are matched segment by segment on
    the repository path, as in a shell: `*` stays within one segment (`*.json` is the top level only), a
    `**` segment spans any number of them (`**/*.onnx` anywhere, `onnx/**` everything under onnx/). A file
    is wanted when it matches an `include` and no `exclude`. A hub repository often carries several
    runtimes' copies of the same model (safetensors, `onnx/` in eight precisions, GGUF…): pulling only what
    the runtime loads keeps SmolVLM-256M at 0.5 GB (torch) or 1 GB (ONNX fp32), not all of them. `name`
    says which files these are, in messages and in `livesight models list`."""

    name: str
    include: tuple[str, ...] = ("**",)
    exclude: tuple[str, ...] = ()

    def wants(self, path: str) -> bool:
        parts = path.split("/")
        return any(_matches(p.split("/"), parts) for p in self.include) and not any(
            _matches(p.split("/"), parts) for p in self.exclude
        )

    def pick(self, paths: Iterable[str]) -> list[str]:
        return [p for p in paths if self.wants(p)]


def _matches(pattern: list[str], parts: list[str]) -> bool:
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_matches(pattern[1:], parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and _matches(pattern[1:], parts[1:])


EVERYTHING = FileSelection("all files")


def check_repo_id(repo: str) -> str:
    if not REPO_ID.fullmatch(repo) or ".." in repo:
        raise WeightsUnavailable(f"{repo!r} is not a Hugging Face model id (like HuggingFaceTB/SmolVLM-256M-Instruct)")
    return repo


def listing_url(endpoint: str, repo: str, revision: str) -> str:
    return f"{endpoint}/api/models/{repo}/revision/{quote(revision, safe='')}"


def file_url(endpoint: str, listing: RepoListing, path: str) -> str:
    return f"{endpoint}/{listing.repo}/resolve/{quote(listing.commit, safe='')}/{quote(path)}"


def parse_listing(repo: str, revision: str, info: object) -> RepoListing:
    """The listing from the API's JSON; ValueError/KeyError/TypeError when it is not one."""
    if not isinstance(info, dict) or not isinstance(info["siblings"], list):
        raise ValueError("no siblings")
    files = tuple(parse_sibling(s) for s in info["siblings"])
    return RepoListing(repo, revision, str(info.get("sha") or revision), files)


def parse_sibling(sibling: dict[str, object]) -> RemoteFile:
    path = str(sibling["rfilename"])
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or any(p in ("", ".", "..") for p in path.split("/")) or "\\" in path:
        raise ValueError(f"unsafe file name {path!r}")
    if pure.name == MANIFEST or pure.name.endswith((".part", ".lock")):
        raise ValueError(f"file name {path!r} is reserved here")
    lfs = sibling.get("lfs")
    sha256 = str(lfs["sha256"]) if isinstance(lfs, dict) and lfs.get("sha256") else None
    size = sibling.get("size", lfs.get("size") if isinstance(lfs, dict) else None)
    if not isinstance(size, int) or size < 0:
        raise ValueError(f"no size for {path!r}")
    blob = sibling.get("blobId")
    return RemoteFile(path, size, sha256, str(blob) if blob and not sha256 else None)


def refusal(response: httpx.Response, endpoint: str, repo: str, revision: str, *, token_sent: bool) -> str:
    """Why the hub said no, in words that say what to do (its `X-Error-Code` tells the cases apart; a
    missing repo is 401 like a private one, as the hub does not say whether a private repo exists)."""
    code = response.headers.get("x-error-code", "")
    status = response.status_code
    if code == "GatedRepo":
        return f"{repo} is gated: accept its terms at {endpoint}/{repo}, then set HF_TOKEN to a token of yours"
    if code == "RevisionNotFound":
        return f"{repo} has no revision {revision!r}"
    if status in (401, 403) and token_sent:
        return f"{endpoint} refused the token in HF_TOKEN for {repo} (HTTP {status})"
    if status in (401, 404) or code == "RepoNotFound":
        return f"no model {repo!r} on {endpoint} (HTTP {status}; if it is private or gated, set HF_TOKEN)"
    return f"{endpoint} answered HTTP {status}"


def transport_why(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return f"no connection: {text}; are you offline?"
    return f"{type(exc).__name__}: {text}"
