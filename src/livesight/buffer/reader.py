"""Reading the store: a JPEG frame is returned as stored; an encoded frame is decoded on demand.

Decoding runs in a bounded pool of threads (`workers`), never on the event loop. A read groups the
requested frames by GOP and decodes each GOP once, from its keyframe to the last requested frame in it;
GOPs decode in parallel. Results go into an LRU cache bounded by bytes, keyed by (stream, lifetime
index): a lifetime index always names the same pixels, so a cached JPEG never goes stale.

A stream whose newest frame is read keeps a *live cursor* for `warm_s` seconds: an open decoder that
follows the live edge, fed every new frame as it arrives (one frame's decode, ~1-2 ms at 720p), so the
next read of the newest frame costs only its JPEG. Streams nobody reads decode nothing.

When a read would make more decode jobs wait than `queue_limit`, it fails at once with 503
`decoder_busy` (and Retry-After) instead of growing a backlog (an idle pool takes a read of any
size). A frame after lost data in its GOP (ingest marks it `damaged`), or one the decoder refuses, is
422 `frame_undecodable` for it and the rest of its GOP: never a wrong picture.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar, TypeVarTuple

from livesight.buffer.ring import FrameRing, FrameWindow
from livesight.codec.gop import Cursor
from livesight.codec.jpeg import encode_jpeg
from livesight.core.errors import DecoderBusy, FrameEvicted, FrameUndecodable
from livesight.core.frame import EncodedPayload, FrameInfo, JpegPayload
from livesight.core.metrics import NULL_RECORDER, Recorder

R = TypeVar("R")
Ts = TypeVarTuple("Ts")


@dataclass(frozen=True, slots=True)
class ReaderLimits:
    workers: int = 2
    queue_limit: int = 256  # decode jobs (one per GOP read, or one live-edge step) waiting or running
    cache_bytes: int = 64 * 1024 * 1024
    max_side: int = 1280
    quality: int = 80
    warm_s: float = 10.0


@dataclass(slots=True)
class _Live:
    """A stream's live cursor: an open decoder at (or catching up with) the newest frame."""

    warm_until: float
    cursor: Cursor | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    stepping: bool = False  # a live-edge step is queued or running


@dataclass(frozen=True, slots=True)
class _Run:
    """Frames `start`..`start + len(datas) - 1` of one GOP, read on the loop before the job starts."""

    stream_id: str
    start: int
    datas: tuple[EncodedPayload, ...]
    wanted: frozenset[int]


@dataclass(slots=True)
class _Decoded:
    jpegs: dict[int, bytes]
    failed_at: int | None = None  # lifetime index the decoder refused (the GOP is unusable from there)
    reason: str = ""


class FrameStoreReader:
    def __init__(self, limits: ReaderLimits | None = None, *, recorder: Recorder = NULL_RECORDER) -> None:
        self.limits = limits or ReaderLimits()
        self.recorder = recorder
        self._pool = concurrent.futures.ThreadPoolExecutor(self.limits.workers, thread_name_prefix="livesight-decode")
        self._cache: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self.cache_bytes = 0
        self.jobs = 0  # decode jobs queued or running
        self._live: dict[str, _Live] = {}
        self._failed: dict[tuple[str, int], int] = {}  # (stream, GOP start) → first index the decoder refused

    # --- reads ----------------------------------------------------------------------------------

    async def jpegs(self, window: FrameWindow, indexes: Sequence[int], label: str) -> list[bytes]:
        sid = window.stream_id
        found: dict[int, bytes] = {}
        runs: dict[int, set[int]] = {}  # GOP start → wanted indexes
        for index in indexes:
            if index in found:
                continue
            payload = window.payload(index)
            if payload is None:
                raise FrameEvicted(f"{label}: frame {index} was evicted while the request was resolved")
            if isinstance(payload, JpegPayload):
                found[index] = payload.data
                continue
            cached = self._cache.get((sid, index))
            if cached is not None:
                self._cache.move_to_end((sid, index))
                found[index] = cached
                continue
            runs.setdefault(window.gop_start(index), set()).add(index)
        if window.last_index is not None and window.last_index in indexes:
            self._warm(sid)
        if not runs:
            return [found[i] for i in indexes]
        if self.jobs and self.jobs + len(runs) > self.limits.queue_limit:  # an idle pool takes any read
            raise DecoderBusy(
                f"{label}: every frame decoder is busy ({self.jobs} decodes waiting, decode_queue_limit "
                f"{self.limits.queue_limit}): retry shortly"
            )
        gops = [self._run(window, start, wanted, label) for start, wanted in sorted(runs.items())]
        jobs = [self._submit(self._decode, gop) for gop in gops]
        for start, decoded in zip(sorted(runs), await asyncio.gather(*jobs), strict=True):
            for index, jpeg in decoded.jpegs.items():
                self._put(sid, index, jpeg)
                found[index] = jpeg
            if decoded.failed_at is not None:
                self._failed[(sid, start)] = decoded.failed_at
                bad = min(i for i in runs[start] if i not in decoded.jpegs)
                raise FrameUndecodable(
                    f"{label}: frame {bad} cannot be decoded ({decoded.reason}); frames {decoded.failed_at} to the "
                    f"next keyframe after {start} are unusable: read a frame after that keyframe"
                )
        return [found[i] for i in indexes]

    def _run(self, window: FrameWindow, start: int, wanted: set[int], label: str) -> _Run:
        """Collect the GOP's bitstream up to the last wanted frame (on the loop: eviction happens here)."""
        last = max(wanted)
        failed = self._failed.get((window.stream_id, start))
        datas: list[EncodedPayload] = []
        for index in range(start, last + 1):
            payload = window.payload(index)
            if payload is None:
                raise FrameEvicted(f"{label}: frame {index} was evicted while the request was resolved")
            assert isinstance(payload, EncodedPayload), "a GOP holds encoded frames only"
            if payload.damaged or (failed is not None and index >= failed):
                bad = min(i for i in wanted if i >= index)
                raise FrameUndecodable(
                    f"{label}: frame {bad} cannot be decoded: data of its GOP (keyframe {start}) was lost in transit "
                    f"before frame {index}; frames from {index} to the next keyframe are unusable: read a newer frame"
                )
            datas.append(payload)
        return _Run(window.stream_id, start, tuple(datas), frozenset(wanted))

    def _submit(self, job: Callable[[*Ts], R], *args: *Ts) -> asyncio.Future[R]:
        """Run `job` in the decode pool, counted in `jobs` (what `queue_limit` bounds) until it is done."""
        self.jobs += 1
        future = asyncio.get_running_loop().run_in_executor(self._pool, job, *args)
        future.add_done_callback(self._job_done)
        return future

    def _job_done(self, _: object) -> None:
        self.jobs -= 1

    def _decode(self, run: _Run) -> _Decoded:
        """Worker thread: decode the run, on the stream's live cursor when it already stands inside it."""
        live = self._live.get(run.stream_id)
        if live is not None:
            with live.lock:  # a live-edge step in progress ends first (one frame): then the cursor is usable
                cursor = live.cursor
                if cursor is not None and run.start <= cursor.index <= min(run.wanted):
                    return self._feed(cursor, run, cursor.index)
        return self._feed(Cursor(run.datas[0].codec), run, run.start - 1)

    def _feed(self, cursor: Cursor, run: _Run, after: int) -> _Decoded:
        out = _Decoded({})
        if after in run.wanted and cursor.frame is not None:
            out.jpegs[after] = self._jpeg(cursor)
        for offset in range(after + 1 - run.start, len(run.datas)):
            index = run.start + offset
            payload = run.datas[offset]
            started = time.perf_counter()
            try:
                cursor.feed(index, payload.data)
            except FrameUndecodable as exc:
                out.failed_at, out.reason = index, exc.message
                return out
            self.recorder.decode_seconds(payload.codec, time.perf_counter() - started)
            if index in run.wanted:
                out.jpegs[index] = self._jpeg(cursor)
        return out

    def _jpeg(self, cursor: Cursor) -> bytes:
        assert cursor.frame is not None
        started = time.perf_counter()
        image = encode_jpeg(cursor.frame, max_side=self.limits.max_side, quality=self.limits.quality)
        self.recorder.encode_seconds(time.perf_counter() - started)
        return image.jpeg

    def _put(self, sid: str, index: int, jpeg: bytes) -> None:
        key = (sid, index)
        if key in self._cache:
            return
        self._cache[key] = jpeg
        self.cache_bytes += len(jpeg)
        while self.cache_bytes > self.limits.cache_bytes and self._cache:
            _, old = self._cache.popitem(last=False)
            self.cache_bytes -= len(old)

    # --- the live edge --------------------------------------------------------------------------

    def _warm(self, sid: str) -> None:
        live = self._live.get(sid)
        until = time.monotonic() + self.limits.warm_s
        if live is None:
            self._live[sid] = _Live(warm_until=until)
        else:
            live.warm_until = until

    def frame_appended(self, ring: FrameRing, info: FrameInfo) -> None:
        """On the loop, for every frame appended (the pool's hook): step a warm stream's live cursor to it."""
        self._follow(ring)

    def _follow(self, ring: FrameRing) -> None:
        live = self._live.get(ring.stream_id)
        if live is None:
            return
        if time.monotonic() > live.warm_until:
            del self._live[ring.stream_id]  # gone cold: its decoder is freed
            return
        if not live.stepping and self.jobs < self.limits.queue_limit:
            self._step(ring, live)

    def _step(self, ring: FrameRing, live: _Live) -> None:
        window = ring.window()
        last = window.last_index
        if last is None:
            return
        start = window.gop_start(last)
        cursor = live.cursor
        begin = cursor.index + 1 if cursor is not None and start <= cursor.index < last else start
        datas: list[EncodedPayload] = []
        for index in range(begin, last + 1):
            payload = window.payload(index)
            if not isinstance(payload, EncodedPayload) or payload.damaged:
                return  # nothing to follow (JPEG frames, or a damaged GOP: wait for its next keyframe)
            datas.append(payload)
        if not datas:
            return
        live.stepping = True
        run = _Run(ring.stream_id, begin, tuple(datas), frozenset())
        future = self._submit(self._advance, live, run)

        def stepped(_: object) -> None:
            live.stepping = False
            if self._live.get(ring.stream_id) is live and ring.next_index - 1 > last:
                self._follow(ring)  # frames arrived while it stepped

        future.add_done_callback(stepped)

    def _advance(self, live: _Live, run: _Run) -> None:
        """Worker thread: feed the live cursor the frames of `run` (a fresh cursor at a keyframe)."""
        with live.lock:
            cursor = live.cursor
            if cursor is None or cursor.index != run.start - 1 or cursor.codec != run.datas[0].codec:
                if not run.datas[0].keyframe:
                    live.cursor = None
                    return
                cursor = Cursor(run.datas[0].codec)
            live.cursor = None  # unusable while it moves (and if a frame fails)
            for offset, payload in enumerate(run.datas):
                started = time.perf_counter()
                try:
                    cursor.feed(run.start + offset, payload.data)
                except FrameUndecodable:
                    return  # the next keyframe starts a fresh cursor
                self.recorder.decode_seconds(payload.codec, time.perf_counter() - started)
            live.cursor = cursor

    def forget(self, stream_id: str) -> None:
        """A stream's frames were freed: drop its live cursor, failure marks and cached JPEGs."""
        self._live.pop(stream_id, None)
        self._failed = {k: v for k, v in self._failed.items() if k[0] != stream_id}
        for key in [k for k in self._cache if k[0] == stream_id]:
            self.cache_bytes -= len(self._cache.pop(key))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
