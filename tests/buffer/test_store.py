"""The encoded frame store: every frame_index decodes to exactly its own picture, through GOP replay,
segments, eviction, a publisher reconnect, a resolution change, lost data, corrupt data and overload."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence

import pytest

from livesight.buffer.pool import BufferLimits, BufferPool
from livesight.buffer.reader import FrameStoreReader, ReaderLimits
from livesight.codec.gop import Cursor
from livesight.codec.jpeg import encode_jpeg
from livesight.core.clock import FakeClock
from livesight.core.errors import DecoderBusy, FrameEvicted, FrameUndecodable
from livesight.core.frame import EncodedPayload, IngestFrame
from livesight.core.metrics import NULL_RECORDER
from tests.support.encoded import clip, frames, number

CODECS = ["vp8", "h264"]


class CountingRecorder(type(NULL_RECORDER)):  # type: ignore[misc]
    def __init__(self) -> None:
        self.decoded = 0

    def decode_seconds(self, codec: str | None, seconds: float) -> None:
        self.decoded += 1


def store(limits: BufferLimits | None = None, **reader: object) -> tuple[BufferPool, FakeClock, CountingRecorder]:
    clock = FakeClock(1_000_000)
    recorder = CountingRecorder()
    pool = BufferPool(
        clock,
        limits,
        reader=FrameStoreReader(ReaderLimits(**{"max_side": 320, **reader}), recorder=recorder),  # type: ignore[arg-type]
    )
    return pool, clock, recorder


def push(pool: BufferPool, clock: FakeClock, items: Sequence[IngestFrame], sid: str = "s1") -> None:
    for item in items:
        pool.append(sid, item)
        clock.advance(33)


def read(pool: BufferPool, indexes: Sequence[int], sid: str = "s1") -> list[bytes]:
    ring = pool.get(sid)
    assert ring is not None

    async def go() -> list[bytes]:
        return await ring.window().jpegs(indexes, "test")

    return asyncio.run(go())


def reference_jpegs(codec: str, datas: Sequence[bytes]) -> list[bytes]:
    """What the old path kept: every frame decoded in order at ingest, then made a JPEG."""
    cursor = Cursor(codec)
    return [encode_jpeg(cursor.feed(i, d), max_side=320, quality=80).jpeg for i, d in enumerate(datas)]


@pytest.mark.parametrize("codec", CODECS)
def test_every_frame_decodes_to_the_picture_the_old_path_kept(codec: str) -> None:
    datas = clip(codec, 90)
    pool, clock, _ = store()
    push(pool, clock, frames(codec, datas))
    expected = reference_jpegs(codec, datas)
    # single frames in random order (keyframes, mid-GOP, GOP ends), each read alone on a cold store
    for index in [*random.Random(7).sample(range(90), 20), 0, 29, 30, 31, 59, 89]:
        cold, clock2, _ = store()
        push(cold, clock2, frames(codec, datas))
        (jpeg,) = read(cold, [index])
        assert jpeg == expected[index], index  # byte-identical JPEG: the same pixels
        assert number(jpeg) == index
    # a segment across three GOPs, and the whole clip at once
    segment = list(range(5, 90, 7))
    assert read(pool, segment) == [expected[i] for i in segment]
    assert [number(j) for j in read(pool, list(range(90)))] == list(range(90))


@pytest.mark.parametrize("codec", CODECS)
def test_a_segment_decodes_each_gop_once(codec: str) -> None:
    pool, clock, recorder = store()
    push(pool, clock, frames(codec, clip(codec, 90)))
    read(pool, [10, 20, 40, 50])  # GOP 0 up to 20, GOP 30 up to 50
    assert recorder.decoded == 21 + 21
    before = recorder.decoded
    read(pool, [10, 20, 40, 50])  # cached
    assert recorder.decoded == before


@pytest.mark.parametrize("codec", CODECS)
def test_eviction_takes_whole_gops_and_what_stays_still_decodes(codec: str) -> None:
    datas = clip(codec, 90)
    total = sum(len(d) for d in datas)
    pool, clock, _ = store(BufferLimits(stream_budget_bytes=total - len(datas[0]) // 2))
    push(pool, clock, frames(codec, datas))
    ring = pool.get("s1")
    assert ring is not None
    window = ring.window()
    assert window.first_index == 30  # the first GOP went as a whole, not frame by frame
    assert window.gop_start(window.first_index) == window.first_index
    assert [number(j) for j in read(pool, [30, 45, 89])] == [30, 45, 89]
    with pytest.raises(FrameEvicted):
        asyncio.run(_read_window(window, 0))


async def _read_window(window: object, index: int) -> list[bytes]:
    from livesight.buffer.ring import FrameWindow

    assert isinstance(window, FrameWindow)
    if index not in window:
        raise FrameEvicted("not retained")
    return await window.jpegs([index], "test")


def test_retention_ages_out_gops_only_when_all_their_frames_are_old() -> None:
    datas = clip("vp8", 60)
    pool, clock, _ = store(BufferLimits(retention_ms=1500))
    push(pool, clock, frames("vp8", datas))  # 60 frames 33 ms apart: ~2 s of arrivals
    ring = pool.get("s1")
    assert ring is not None
    clock.advance(1000)  # now frames 0..44 are older than 1.5 s, but GOP 30..59 has newer ones: only GOP 0 goes
    pool.sweep()
    assert ring.window().first_index == 30
    clock.advance(10_000)
    pool.sweep()
    assert ring.retained_count == 0  # an idle stream ages out entirely


@pytest.mark.parametrize("codec", CODECS)
def test_a_reconnect_and_a_resolution_change_start_new_gops(codec: str) -> None:
    first = clip(codec, 40)
    second = clip(codec, 40, width=480, height=270, first=40)  # a new publication: new session, new size
    pool, clock, _ = store(max_side=640)
    push(pool, clock, frames(codec, first, session="a"))
    push(pool, clock, frames(codec, second, session="b", first_ms=123456.0))
    ring = pool.get("s1")
    assert ring is not None
    window = ring.window()
    assert (window.info(39).width, window.info(40).width) == (320, 480)
    assert window.info(40).timestamp_ms > window.info(39).timestamp_ms
    assert [number(j) for j in read(pool, [38, 39, 40, 41, 79])] == [38, 39, 40, 41, 79]


@pytest.mark.parametrize("codec", CODECS)
def test_frames_after_lost_data_are_undecodable_until_the_next_keyframe(codec: str) -> None:
    datas = clip(codec, 90)
    items = frames(codec, datas)
    items = [f if not 40 <= i < 60 else _damaged(f) for i, f in enumerate(items)]  # loss before frame 40
    pool, clock, _ = store()
    push(pool, clock, items)
    assert [number(j) for j in read(pool, [31, 39])] == [31, 39]  # before the loss: fine
    for index in (40, 45, 59):
        with pytest.raises(FrameUndecodable, match=f"frame {index}"):
            read(pool, [index])
    with pytest.raises(FrameUndecodable):
        read(pool, [35, 50])  # a segment that reaches into the damage fails as a whole
    assert [number(j) for j in read(pool, [60, 75])] == [60, 75]  # the next keyframe heals it


def _damaged(frame: IngestFrame) -> IngestFrame:
    assert isinstance(frame.payload, EncodedPayload)
    if frame.payload.keyframe:
        return frame
    payload = EncodedPayload(frame.payload.data, frame.payload.codec, keyframe=False, damaged=True)
    return IngestFrame(frame.session, frame.media_ms, frame.width, frame.height, payload)


@pytest.mark.parametrize("codec", CODECS)
def test_corrupt_data_is_an_error_never_a_wrong_picture(codec: str) -> None:
    datas = list(clip(codec, 60))
    datas[35] = b"\x00\x00\x00\x01\x41" + b"\xff" * 8 if codec == "h264" else b"\x31\xff\xff"  # garbage P-frame
    pool, clock, _ = store()
    push(pool, clock, frames(codec, tuple(datas)))
    assert number(read(pool, [34])[0]) == 34
    for index in (35, 36):
        try:
            (jpeg,) = read(pool, [index])
        except FrameUndecodable:
            continue
        # a decoder may conceal the damage instead of refusing it; then it must not pass for another frame
        assert number(jpeg) in (None, index)
    assert number(read(pool, [30])[0]) == 30


def test_a_frame_with_nothing_to_decode_from_is_stored_damaged() -> None:
    datas = clip("vp8", 30)
    pool, clock, _ = store()
    push(pool, clock, frames("vp8", datas[5:]))  # starts mid-GOP (ingest drops these; the store must not lie)
    with pytest.raises(FrameUndecodable):
        read(pool, [0])


def test_overload_is_a_503_not_a_backlog() -> None:
    pool, clock, _ = store(queue_limit=2)
    push(pool, clock, frames("vp8", clip("vp8", 90)))
    ring = pool.get("s1")
    assert ring is not None

    async def go() -> None:
        window = ring.window()
        first = asyncio.ensure_future(window.jpegs([10, 40], "a"))  # two GOPs: the queue is full
        await asyncio.sleep(0)
        with pytest.raises(DecoderBusy) as raised:
            await window.jpegs([70], "b")
        assert raised.value.headers["Retry-After"] == "1"
        assert [number(j) for j in await first] == [10, 40]
        # an idle store runs a read of any size: more GOPs than the queue holds is not an overload
        assert [number(j) for j in await window.jpegs([5, 35, 65], "c")] == [5, 35, 65]

    asyncio.run(go())


@pytest.mark.parametrize("codec", CODECS)
def test_reading_the_newest_frame_keeps_a_decoder_at_the_live_edge(codec: str) -> None:
    datas = clip(codec, 90)
    items = frames(codec, datas)
    pool, _, recorder = store(warm_s=60.0)

    async def go() -> None:
        for item in items[:50]:
            pool.append("s1", item)
        ring = pool.get("s1")
        assert ring is not None
        (jpeg,) = await ring.window().jpegs([49], "test")  # cold: replays GOP 30..49
        assert number(jpeg) == 49
        for i, item in enumerate(items[50:], start=50):
            pool.append("s1", item)
            await _until(lambda i=i: _live_index(pool) == i)  # type: ignore[misc]  # the live cursor follows each new frame
            before = recorder.decoded
            (jpeg,) = await ring.window().jpegs([i], "test")
            assert number(jpeg) == i
            assert recorder.decoded == before  # nothing replayed: only the JPEG of the live picture

    asyncio.run(go())


def _live_index(pool: BufferPool) -> int:
    live = pool.reader._live.get("s1")
    return live.cursor.index if live is not None and live.cursor is not None else -1


async def _until(condition: object, timeout_s: float = 10.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_idle_streams_decode_nothing() -> None:
    pool, clock, recorder = store()
    push(pool, clock, frames("vp8", clip("vp8", 90)))
    assert recorder.decoded == 0
