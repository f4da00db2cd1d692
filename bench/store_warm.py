"""The store's own cost of reading the newest frame of a warm stream (no HTTP, no chat path).

    PYTHONPATH=src:. .venv/bin/python -m bench.store_warm [--reads 600]

A 720p ~2 Mbit/s VP8 clip (tests/support/encoded.py, camera noise, a keyframe every 60 frames) is
appended to a `BufferPool` one frame every 1/30 s; after each append the newest frame is read through
`FrameStoreReader` with the JPEG cache off, as a client polling `frame_index=-1` would. The first 60 reads
(warming up the live cursor) are left out. Prints the read latency p50/p99 and how many frames each read
had to decode (0: the live cursor had the picture ready; only its JPEG was made).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from tests.support.encoded import clip, frames

from livesight.buffer.pool import BufferLimits, BufferPool
from livesight.buffer.reader import FrameStoreReader, ReaderLimits
from livesight.core.clock import SystemClock
from livesight.core.metrics import NullRecorder


class Counting(NullRecorder):
    def __init__(self) -> None:
        self.decoded = 0

    def decode_seconds(self, codec: str | None, seconds: float) -> None:
        self.decoded += 1


async def run(reads: int) -> None:
    recorder = Counting()
    items = frames("vp8", clip("vp8", 120, gop=60, width=1280, height=720, bit_rate=2_000_000, noise=3.0))
    reader = FrameStoreReader(ReaderLimits(cache_bytes=0), recorder=recorder)
    pool = BufferPool(SystemClock(), BufferLimits(), reader=reader)
    latencies: list[float] = []
    decodes: list[int] = []
    for i in range(reads):
        item = items[i % len(items)]
        pool.append("s", type(item)(item.session, i * 1000 / 30, item.width, item.height, item.payload))
        await asyncio.sleep(1 / 30)
        ring = pool.get("s")
        assert ring is not None
        window = ring.window()
        assert window.last_index is not None
        before = recorder.decoded
        started = time.perf_counter()
        await window.jpegs([window.last_index], "bench")
        latencies.append((time.perf_counter() - started) * 1000)
        decodes.append(recorder.decoded - before)
    latencies, decodes = latencies[60:], decodes[60:]
    p99 = sorted(latencies)[int(len(latencies) * 0.99)]
    print(f"newest-frame read on a warm stream: p50 {statistics.median(latencies):.2f} ms, p99 {p99:.2f} ms, "
          f"frames decoded per read: mean {statistics.mean(decodes):.2f}, max {max(decodes)}")  # fmt: skip
    reader.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reads", type=int, default=600)
    asyncio.run(run(parser.parse_args().reads))


if __name__ == "__main__":
    main()
