"""Server-pulled sources (CONTRACT §3 `source`): RTSP, HLS or a file, read with PyAV.

One thread per pulled stream demuxes, decodes and encodes (JPEG, same path as WebRTC ingest) and
hands frames to the event loop. A file plays at its native rate (paced by its timestamps) and loops,
like a camera that never stops; each loop is a new media session so the stream clock stays monotonic.
A network source that fails is reopened with backoff until the stream ends; every failure is
reported as the stream's `last_error`. The thread stops within about a second of the stream ending.

File sources read the server's disk, so they are allowed only under `source_file_dir`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import av

from livesight.core.errors import SourceUnsupported
from livesight.core.frame import IngestFrame, IngestTarget, JpegPayload, StreamDirectory
from livesight.ingest.frames import FrameEncoder, encode_jpeg

log = logging.getLogger(__name__)
_SCHEMES = {"rtsp": ("rtsp://", "rtsps://"), "hls": ("http://", "https://")}


def check_source(kind: str, url: str, file_dir: Path | None, allowed_hosts: frozenset[str] | None = None) -> str:
    """The URL or path PyAV should open; SourceUnsupported (400) when not allowed.

    With `allowed_hosts` set, a network source's host must be one of them, compared as written in
    the URL before anything is resolved or connected (no DNS lookup for a refused host).
    """
    if kind in _SCHEMES:
        if not url.lower().startswith(_SCHEMES[kind]):
            raise SourceUnsupported(f"a {kind} source needs a {' or '.join(_SCHEMES[kind])} URL, got {url!r}")
        if allowed_hosts is not None:
            try:
                host = (urlsplit(url).hostname or "").lower()
            except ValueError:
                host = ""
            if host not in allowed_hosts:
                raise SourceUnsupported(
                    f"host {host!r} of {url!r} is not in source_allowed_hosts ({', '.join(sorted(allowed_hosts))})"
                )
        return url
    if kind == "file":
        if file_dir is None:
            raise SourceUnsupported(
                "file sources are disabled on this server; set source_file_dir to the directory they may read"
            )
        path = Path(url.removeprefix("file://"))
        root = file_dir.resolve()
        resolved = (root / path).resolve() if not path.is_absolute() else path.resolve()
        if not resolved.is_relative_to(root):
            raise SourceUnsupported(f"file {url!r} is outside source_file_dir")
        if not resolved.is_file():
            raise SourceUnsupported(f"file {url!r} does not exist in source_file_dir")
        return str(resolved)
    raise SourceUnsupported(f"unknown source type {kind!r} (rtsp, hls or file)")


class PulledSource:
    def __init__(
        self, target: IngestTarget, kind: str, location: str, encoder: FrameEncoder, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.target = target
        self.kind = kind
        self.location = location
        self.encoder = encoder
        self.loop = loop
        self.stop = threading.Event()
        self.frames = 0
        self.thread = threading.Thread(target=self._run, name=f"livesight-pull-{target.stream_id[:8]}", daemon=True)

    def _call(self, fn: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # loop closed at shutdown
            self.loop.call_soon_threadsafe(fn, *args)

    def _run(self) -> None:
        backoff = 0.5
        session = 0
        while not self.stop.is_set():
            session += 1
            try:
                produced = self._play(f"pull-{session}")
                backoff = 0.5
                if self.kind != "file" and not self.stop.is_set():
                    self._call(self.target.report_error, f"{self.kind} source ended; reopening")
                if self.kind == "file" and not produced:
                    self._call(self.target.report_error, "file source has no decodable video frame")
                    return
            except av.error.FFmpegError as exc:
                self._call(self.target.report_error, f"{self.kind} source failed: {exc}")
            except Exception as exc:
                log.exception("pulled source of stream %s failed", self.target.stream_id)
                self._call(self.target.report_error, f"{self.kind} source failed: {exc!r}")
            if self.kind != "file" or self.stop.is_set():
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def _play(self, session: str) -> int:
        options = {"rtsp_transport": "tcp"} if self.kind == "rtsp" else {}
        produced = 0
        with av.open(self.location, options=options, timeout=(10.0, 1.0)) as container:
            if not container.streams.video:
                raise SourceUnsupported("the source has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            codec = stream.codec_context.name.upper()
            self._call(functools.partial(self.target.publisher_connected, f"pull:{self.kind}", codec=codec))
            started = time.monotonic()
            first_ms: float | None = None
            for frame in self._frames(container, stream):
                if self.stop.is_set():
                    break
                ms = float(Fraction(frame.pts) * Fraction(frame.time_base) * 1000) if frame.pts is not None else None
                if ms is None:
                    ms = produced * 1000 / float(stream.average_rate or 30)
                if self.kind == "file":  # native rate, not as fast as possible
                    first_ms = ms if first_ms is None else first_ms
                    delay = started + (ms - first_ms) / 1000 - time.monotonic()
                    if delay > 0 and self.stop.wait(delay):
                        break
                encoded = encode_jpeg(frame, max_side=self.encoder.max_side, quality=self.encoder.quality)
                self._call(
                    self.target.push_frame,
                    IngestFrame(session, ms, encoded.width, encoded.height, JpegPayload(encoded.jpeg)),
                )
                produced += 1
                self.frames += 1
        return produced

    def _frames(self, container: Any, stream: Any) -> Iterator[Any]:
        for packet in container.demux(stream):
            if self.stop.is_set():
                return
            yield from packet.decode()


class PullSources:
    """Starts and stops the pulled sources of a process."""

    def __init__(
        self,
        directory: StreamDirectory,
        encoder: FrameEncoder,
        file_dir: Path | None = None,
        allowed_hosts: list[str] | None = None,
    ) -> None:
        self.directory = directory
        self.encoder = encoder
        self.file_dir = file_dir
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts) if allowed_hosts is not None else None
        self.sources: dict[str, PulledSource] = {}
        directory.add_end_hook(self.on_stream_end)

    def start(self, stream_id: str, kind: str, url: str) -> None:
        location = check_source(kind, url, self.file_dir, self.allowed_hosts)
        target = self.directory.ingest_target(stream_id)
        if target is None:
            raise SourceUnsupported(f"stream {stream_id} is not active")
        source = PulledSource(target, kind, location, self.encoder, asyncio.get_running_loop())
        self.sources[stream_id] = source
        source.thread.start()

    def on_stream_end(self, stream_id: str) -> None:
        source = self.sources.pop(stream_id, None)
        if source is not None:
            source.stop.set()

    async def aclose(self) -> None:
        sources = list(self.sources.values())
        self.sources.clear()
        for source in sources:
            source.stop.set()
        for source in sources:
            await asyncio.to_thread(source.thread.join, 2.0)
