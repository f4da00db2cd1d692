"""How long a stream-record checkpoint holds the event loop, and how long the SQLite write takes.

    .venv/bin/python bench/checkpoint.py [--streams 50] [--runs 200] [--dir /tmp]

Builds a registry on a SQLite file in `--dir` (WAL, synchronous=NORMAL), creates `--streams` active
streams with a few frames each, then times `checkpoint(everything=True)` (every stream's record in
one transaction: the most a reaper tick writes, and what a clean shutdown writes) and a keepalive.
"inline" runs the write on the calling thread (the cost the writer thread pays); "loop" is the
server's setup (background_writes=True): the time until the call returns to the event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from livesight.buffer.pool import BufferPool
from livesight.core.clock import FakeClock
from livesight.core.frame import IngestFrame, JpegPayload
from livesight.store.streams import SQLiteStreamStore
from livesight.streams.registry import StreamRegistry


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):.3f} ms, p99 {p99:.3f} ms, max {ordered[-1]:.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    for background in (False, True):
        run(args.streams, args.runs, args.dir, background)


def run(count: int, runs: int, directory: Path | None, background: bool) -> None:
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        clock = FakeClock()
        store = SQLiteStreamStore(Path(tmp) / "livesight.db")
        registry = StreamRegistry(clock, BufferPool(clock), store=store, background_writes=background)
        streams = [registry.create(f"key_{i % 5}") for i in range(count)]
        asyncio.run(registry.saved())
        for stream in streams:
            target = registry.ingest_target(stream.id)
            assert target is not None
            for n in range(3):
                target.push_frame(IngestFrame("s", n * 33.0, 64, 48, JpegPayload(b"\xff\xd8x")))
        checkpoint, keepalive = [], []
        for i in range(runs):
            started = time.perf_counter()
            written = registry.checkpoint(everything=True)
            checkpoint.append((time.perf_counter() - started) * 1000)
            assert written == count
            stream = streams[i % len(streams)]
            started = time.perf_counter()
            registry.keepalive(stream.id, stream.owner)
            keepalive.append((time.perf_counter() - started) * 1000)
            asyncio.run(registry.saved())  # one write at a time, as a request handler waits for it
        registry.close()
    mode = "loop" if background else "inline"
    print(f"{mode}: checkpoint of {count} streams ({runs} runs): {percentiles(checkpoint)}")
    print(f"{mode}: keepalive ({runs} runs): {percentiles(keepalive)}")


if __name__ == "__main__":
    main()
