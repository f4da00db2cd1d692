"""Server-pulled sources (CONTRACT §3 `source`): RTSP, HLS or a file, read with PyAV.

One thread per pulled stream demuxes it and hands frames to the event loop. H264 and VP8 without
reordering are kept encoded, packets as demuxed, never decoded at ingest (ingest/pull_packets.py: the
store decodes them on read, like WebRTC video); any other stream (MPEG-4, HEVC, MJPEG, H264 with
B-frames, ...) is decoded and encoded to JPEG in this thread, and stored as JPEGs. One log line says
which path a source took. A file plays at its native rate (paced by its timestamps) and loops,
like a camera that never stops; each loop is a new media session so the stream clock stays monotonic.
A source that ends after playing is reopened. A source that gives no frame (refused by the
outbound policy, unreachable, undecodable) is retried with backoff (1 s doubling to 30 s) and, after
`source_max_failures` failed attempts in a row, its stream ends with `end_reason: "source_failed"`.
The client reads only the generic "could not open source" in `last_error` (telling refused from
unreachable from undecodable would make it a port scanner); the reason is in the server log, one
line per attempt. The thread stops within about a second of the stream ending.

Network sources connect only through ingest/egress.py, which applies the outbound policy
(core/outbound.py) to every hop. File sources read the server's disk, so they are allowed only
under `source_file_dir`, and may not reach any protocol but `file`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TypeVarTuple
from urllib.parse import urlsplit

import av
from av.container import InputContainer
from av.frame import Frame
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from livesight.codec.jpeg import FrameEncoder
from livesight.core.errors import NeedsDecode, SourceUnsupported
from livesight.core.frame import FramePayload, IngestDirectory, IngestFrame, IngestTarget, JpegPayload
from livesight.core.outbound import OutboundPolicy, OutboundRefused
from livesight.core.redact import redact
from livesight.ingest.egress import Egress
from livesight.ingest.pull_packets import PacketFeed, encoded_codec, timestamp_ms

log = logging.getLogger(__name__)
_Ts = TypeVarTuple("_Ts")
_Made = Callable[[], tuple[int, int, FramePayload]]  # a frame's stored size and payload, made after pacing
_SCHEMES = {"rtsp": ("rtsp://", "rtsps://"), "hls": ("http://", "https://")}
OPEN_FAILED = "could not open source"
# What FFmpeg may open for a source: never file:, pipe:, udp:, rtp: ... from a playlist or an SDP.
# http/https reach the network only through the egress proxy (httpproxy is CONNECT); rtsp only the relay.
_HLS_PROTOCOLS = "http,https,tcp,tls,httpproxy,crypto"
_RTSP_PROTOCOLS = "rtsp,tcp"


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


def media_ms(frame: Frame) -> float | None:
    """A decoded frame's media time in ms."""
    return timestamp_ms(frame.pts, None if frame.time_base is None else Fraction(frame.time_base))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a failing pulled source is retried: backoff doubling from `first_s` to `max_s`; the stream
    ends (`source_failed`) after `max_failures` consecutive attempts that gave no frame."""

    max_failures: int = 5
    first_s: float = 1.0
    max_s: float = 30.0


class PulledSource:
    def __init__(
        self,
        target: IngestTarget,
        kind: str,
        location: str,
        encoder: FrameEncoder,
        loop: asyncio.AbstractEventLoop,
        *,
        egress: Egress | None = None,
        retry: RetryPolicy | None = None,
        on_failed: Callable[[], None] | None = None,
    ) -> None:
        self.target = target
        self.kind = kind
        self.location = location
        self.encoder = encoder
        self.loop = loop
        self.egress = egress
        self.retry = retry or RetryPolicy()
        self.on_failed = on_failed
        self.stop = threading.Event()
        self.frames = 0
        self.attempts = 0
        self.decode_only = False  # set once its packets turned out not to be storable as they are
        self.path: str | None = None  # "encoded" or "jpeg", of the latest session
        self._proxy: str | None = None  # this source's egress proxy URL, made on first use
        self.tag = f"stream {target.stream_id}"
        self.thread = threading.Thread(target=self._run, name=f"livesight-pull-{target.stream_id[:8]}", daemon=True)

    def _call(self, fn: Callable[[*_Ts], object], *args: *_Ts) -> None:
        with contextlib.suppress(RuntimeError):  # loop closed at shutdown
            self.loop.call_soon_threadsafe(fn, *args)

    def _run(self) -> None:
        try:
            self._retry_forever()
        finally:
            if self.egress is not None:
                self.egress.release(self.tag)

    def _retry_forever(self) -> None:
        """Open, play, reopen. The client only ever reads the generic OPEN_FAILED (what failed, and
        why, would tell it what listens where); the reason goes to the server log, once per attempt."""
        failures, backoff, session = 0, self.retry.first_s, 0
        while not self.stop.is_set():
            session += 1
            self.attempts += 1
            before = self.frames
            try:
                self._play(f"pull-{session}")
                error = None if self.frames > before else "no decodable video frame"
            except (av.error.FFmpegError, OutboundRefused, SourceUnsupported, OSError, ValueError) as exc:
                error = redact(str(exc) or repr(exc))  # FFmpeg names the URL, password too
            except Exception as exc:
                log.exception("pulled source of %s failed", self.tag)
                error = repr(exc)
            if self.stop.is_set():
                return
            if self.frames > before:  # it played: a new run of attempts, whatever ended it
                failures, backoff = 0, self.retry.first_s
                if self.kind == "file" and error is None:
                    continue  # a file loops, like a camera that never stops
                why = error or "end of stream"
                log.warning("pulled %s source of %s ended: %s; reopening", self.kind, self.tag, why)
                self._call(self.target.report_error, f"{self.kind} source ended; reopening")
                self.stop.wait(self.retry.first_s)
                continue
            failures += 1
            log.warning(
                "pulled %s source of %s could not be opened (attempt %d of %d): %s",
                self.kind, self.tag, failures, self.retry.max_failures, error,
            )  # fmt: skip
            if failures >= self.retry.max_failures:
                self._call(self.target.report_error, f"{OPEN_FAILED}; gave up after {failures} attempts")
                if self.on_failed is not None:
                    self._call(self.on_failed)
                return
            self._call(self.target.report_error, f"{OPEN_FAILED}; retrying in {backoff:g} s")
            if self.stop.wait(backoff):
                return
            backoff = min(backoff * 2, self.retry.max_s)

    def _open(self) -> InputContainer:
        """The container, opened so that every connection passes the egress (see ingest/egress.py)."""
        if self.kind == "file":  # a playlist file must not reach the network or other protocols
            return av.open(self.location, options={"protocol_whitelist": "file"}, timeout=(10.0, 1.0))
        if self.egress is None:
            raise SourceUnsupported("network sources need the egress proxy")
        if self.kind == "rtsp":
            relay = self.egress.rtsp_relay(self.tag, self.location)
            options = {"rtsp_transport": "tcp", "protocol_whitelist": _RTSP_PROTOCOLS}
            return av.open(relay, options=options, timeout=(10.0, 1.0))
        if self._proxy is None:
            self._proxy = self.egress.proxy_url(self.tag)
        options = {
            "http_proxy": self._proxy,
            "protocol_whitelist": _HLS_PROTOCOLS,
            "http_persistent": "0",  # the proxy closes each connection after one response
        }
        return av.open(self.location, options=options, timeout=(10.0, 1.0))

    def _play(self, session: str) -> int:
        try:
            return self._play_once(session)
        except NeedsDecode as exc:  # raised before any of the offending packets was stored
            self.decode_only = True
            log.warning("pulled %s source of %s: %s; reopening it decoded to JPEG", self.kind, self.tag, exc)
            return self._play_once(f"{session}-jpeg")

    def _play_once(self, session: str) -> int:
        produced = 0
        with self._open() as container:
            if not container.streams.video:
                raise SourceUnsupported("the source has no video stream")
            stream = container.streams.video[0]
            codec = stream.codec_context.name.upper()
            kept, why = (None, "its packets are not one picture each") if self.decode_only else encoded_codec(stream)
            self._log_path(codec, kept, why)
            if kept is None:
                stream.thread_type = "AUTO"
            frames = self._frames(container, stream, codec) if kept is None else self._packets(container, stream, kept)
            started = time.monotonic()
            first_ms: float | None = None
            for ms, make in frames:
                if self.stop.is_set():
                    break
                if ms is None:
                    ms = produced * 1000 / float(stream.average_rate or 30)
                if self.kind == "file":  # native rate, not as fast as possible
                    first_ms = ms if first_ms is None else first_ms
                    delay = started + (ms - first_ms) / 1000 - time.monotonic()
                    if delay > 0 and self.stop.wait(delay):
                        break
                width, height, payload = make()
                if produced == 0:  # connected once it delivers, not when a container merely opened
                    self._call(functools.partial(self.target.publisher_connected, f"pull:{self.kind}", codec=codec))
                self._call(self.target.push_frame, IngestFrame(session, ms, width, height, payload))
                produced += 1
                self.frames += 1
        return produced

    def _log_path(self, codec: str, kept: str | None, why: str) -> None:
        path = "jpeg" if kept is None else "encoded"
        if path != self.path:  # once, and again only if it changes (a file loops)
            self.path = path
            how = "kept encoded" if kept is not None else "decoded to JPEG at ingest"
            log.info("pulled %s source of %s: %s %s (%s)", self.kind, self.tag, codec, how, why)

    def _packets(
        self, container: InputContainer, stream: VideoStream, codec: str
    ) -> Iterator[tuple[float | None, _Made]]:
        """The stream's packets as stored encoded frames, not decoded (ingest/pull_packets.py)."""
        feed = PacketFeed.for_stream(stream, codec, self.encoder.max_side, detect_gaps=self.kind != "file")
        for packet in container.demux(stream):
            if self.stop.is_set():
                return
            dropped = feed.dropped
            stored = feed.offer(packet)
            for _ in range(feed.dropped - dropped):
                self._call(self.target.frame_dropped)
            for frame in stored:
                yield frame.media_ms, frame.made

    def _frames(
        self, container: InputContainer, stream: VideoStream, codec: str
    ) -> Iterator[tuple[float | None, _Made]]:
        """Decoded frames, JPEG-encoded when made; each packet's decode timed (a packet whose decode
        yields no frame counts with the next frame it does yield)."""
        pending = 0.0
        for packet in container.demux(stream):
            if self.stop.is_set():
                return
            started = time.perf_counter()
            frames = packet.decode()
            pending += time.perf_counter() - started
            for frame in frames:
                self.encoder.recorder.decode_seconds(codec, pending)
                pending = 0.0
                yield media_ms(frame), functools.partial(self._jpeg, frame)

    def _jpeg(self, frame: VideoFrame) -> tuple[int, int, FramePayload]:
        encoded = self.encoder.encode(frame)
        return encoded.width, encoded.height, JpegPayload(encoded.jpeg)


class PullSources:
    """Starts and stops the pulled sources of a process; owns their egress (started on first use)."""

    def __init__(
        self,
        directory: IngestDirectory,
        encoder: FrameEncoder,
        file_dir: Path | None = None,
        policy: OutboundPolicy | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.directory = directory
        self.encoder = encoder
        self.file_dir = file_dir
        self.policy = policy or OutboundPolicy()
        self.retry = retry or RetryPolicy()
        self.egress = Egress(self.policy)
        self.sources: dict[str, PulledSource] = {}
        directory.add_end_hook(self.on_stream_end)

    def start(self, stream_id: str, kind: str, url: str, on_failed: Callable[[], None] | None = None) -> None:
        """Check the source's form and start pulling it. `on_failed` runs on the loop when it failed
        `retry.max_failures` times in a row (the app ends the stream with `source_failed`)."""
        location = check_source(kind, url, self.file_dir, self.policy.hosts)
        target = self.directory.ingest_target(stream_id)
        if target is None:
            raise SourceUnsupported(f"stream {stream_id} is not active")
        egress = self.egress if kind in _SCHEMES else None
        loop = asyncio.get_running_loop()
        source = PulledSource(
            target, kind, location, self.encoder, loop, egress=egress, retry=self.retry, on_failed=on_failed
        )
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
        await asyncio.to_thread(self.egress.close)
