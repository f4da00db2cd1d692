"""Upstream request bodies built from shared pieces, so memory per request is bounded (issue 8 item 2).

A request may send the same frame many times (1,000 `image_url` parts of `frame_index=-1`). Built
the plain way, each part became its own base64 string, then its own copy inside `json.dumps`, then
again inside `.encode()`: about 4 × the JPEG per part (before this module, 1,000 parts of one
1.28 MB 1280×720 noise frame took the server from 134 MB to a 5.6 GB peak and 2.35 GB after; measured
like `tests/api/test_chat_memory.py`, a subprocess server's VmRSS, with that frame and part count). Here:

- a media URL in a rendered body is a `DataUrl`: a tuple of ASCII byte pieces (prefix, base64,
  separators); `Base64Cache` encodes each distinct JPEG (by identity) once per request, and every
  part that sends it shares that one `bytes`;
- `encode_body` dumps the JSON skeleton with a per-request random token in place of each `DataUrl`
  and splits it there, giving a `Body`: the list of pieces and its exact length. It is sent as
  a stream with an explicit Content-Length (no chunked encoding), and each chunk is dropped as soon
  as it has been handed to the socket, so the body's memory is gone once it is sent.

The upstream still receives every copy it was asked for; `max_request_frames` bounds how many.
`Body.held` is what the body keeps in memory (each distinct piece once): what `upstream_inflight_mb`
counts.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

SHARED_BYTES = 4096  # pieces this large are sent as they are (shared, never copied)
COALESCE_BYTES = 64 * 1024  # runs of smaller pieces are joined into writes of about this size


@dataclass(frozen=True, slots=True)
class DataUrl:
    """A data URL as pieces of ASCII that JSON needs no escaping for (a prefix, base64, commas)."""

    pieces: tuple[bytes, ...]

    def text(self) -> str:
        return b"".join(self.pieces).decode("ascii")


class Base64Cache:
    """The base64 of each distinct `bytes` object, computed once. Keyed by identity; the entry keeps the
    object alive, so an id is never reused while the cache lives (one cache per request)."""

    def __init__(self) -> None:
        self._done: dict[int, tuple[bytes, bytes]] = {}

    def __call__(self, data: bytes) -> bytes:
        hit = self._done.get(id(data))
        if hit is None:
            hit = self._done[id(data)] = (data, base64.b64encode(data))
        return hit[1]


def base64_size(nbytes: int) -> int:
    return 4 * -(-nbytes // 3)


@dataclass(slots=True)
class Body:
    """An upstream request body: `chunks` joined are the JSON text, `length` bytes long."""

    chunks: list[bytes]
    length: int
    held: int  # bytes this body keeps in memory: each distinct chunk object once

    def join(self) -> bytes:
        return b"".join(self.chunks)

    async def stream(self, done: Callable[[], None] | None = None) -> AsyncIterator[bytes]:
        """Yield the chunks, each dropped once yielded; `done` runs when the body has been consumed or
        abandoned (exhausted, closed, or garbage-collected)."""
        try:
            for i in range(len(self.chunks)):
                chunk, self.chunks[i] = self.chunks[i], b""
                yield chunk
                del chunk
        finally:
            self.chunks = []
            if done is not None:
                done()


def encode_body(body: Mapping[str, object]) -> Body:
    """`body` as compact JSON (non-ASCII kept as UTF-8), with every `DataUrl` in it spliced in as pieces."""
    token = secrets.token_hex(12)
    urls: list[DataUrl] = []

    def placeholder(value: object) -> str:
        if not isinstance(value, DataUrl):
            raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
        urls.append(value)
        return f"{token}#{len(urls) - 1}"

    skeleton = json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=placeholder)
    if not urls:
        data = skeleton.encode()
        return Body([data], len(data), len(data))
    texts = re.split(f'"{token}#([0-9]+)"', skeleton)
    pieces: list[bytes] = []
    for i, text in enumerate(texts):
        if i % 2 == 0:
            pieces.append(text.encode())
        else:
            pieces.append(b'"')
            pieces.extend(urls[int(text)].pieces)
            pieces.append(b'"')
    chunks = _coalesce(pieces)
    distinct = {id(c): len(c) for c in chunks}
    return Body(chunks, sum(len(c) for c in chunks), sum(distinct.values()))


def _coalesce(pieces: list[bytes]) -> list[bytes]:
    """Runs of small pieces (JSON text, separators) joined into fewer writes; larger pieces kept as the
    shared objects, so a frame sent N times is still held once."""
    out: list[bytes] = []
    run: list[bytes] = []
    run_bytes = 0
    for piece in pieces:
        if not piece:
            continue
        if len(piece) >= SHARED_BYTES:
            if run:
                out.append(b"".join(run))
                run, run_bytes = [], 0
            out.append(piece)
            continue
        run.append(piece)
        run_bytes += len(piece)
        if run_bytes >= COALESCE_BYTES:
            out.append(b"".join(run))
            run, run_bytes = [], 0
    if run:
        out.append(b"".join(run))
    return out
