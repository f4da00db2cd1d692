"""CPU per stream-second of one pulled 720p H264 `file` source: kept encoded (demux only) vs decode + JPEG.

PYTHONPATH=$PWD/src .venv/bin/python -m bench.pull_cpu [--seconds 20] [--runs 2]

A 720p30 H264 clip of the test pattern (libx264 ultrafast/zerolatency, no B-frames, ~2.5 Mbit/s) plays
through a real server (it is paced at its native rate, so one wall second is one stream second). The
process's CPU time (user + system, every thread: server, event loop, pull thread) over the window is
divided by the stream seconds played; an idle server over the same window is measured too, so the
source's own share is the difference. `jpeg` forces the old path (decode + JPEG every frame at ingest)
by making `encoded_codec` refuse the stream. Nobody reads the frames: reads decode on demand and cost
the same in both paths when they happen (see buffer/reader.py), so this is the ingest cost alone.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import av
from tests.support.server import run_server
from tests.support.video import encode_pattern

from livesight.core.clock import SystemClock
from livesight.ingest import pull

_KEPT = pull.encoded_codec


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(tmp: Path, media: Path, path: str, seconds: float) -> tuple[float, int]:
    """CPU seconds over `seconds` of wall time and the frames stored, with a source (or none, `idle`)."""
    pull.encoded_codec = _KEPT if path == "encoded" else lambda stream: (None, "bench: forced")  # type: ignore[assignment]
    settings = {"source_file_dir": media, "preload_builtin_models": False}
    with run_server(tmp / path, clock=SystemClock(), **settings) as live, live.client(live.new_key()) as c:
        sid = None
        if path != "idle":
            sid = c.post("/v1/streams", json={"source": {"type": "file", "url": "clip.mp4"}}).json()["id"]
            while (c.get(f"/v1/streams/{sid}").json()["last_frame_index"] or 0) < 1:
                time.sleep(0.05)
        first = c.get(f"/v1/streams/{sid}").json()["last_frame_index"] if sid else 0
        started = cpu_s()
        time.sleep(seconds)
        used = cpu_s() - started
        last = c.get(f"/v1/streams/{sid}").json()["last_frame_index"] if sid else 0
    return used, last - first


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        media = tmp / "media"
        media.mkdir()
        with av.open(str(media / "clip.mp4"), "w") as container:  # 10 s, loops
            encode_pattern(container, "libx264", 300, 30, (1280, 720), preset="ultrafast", tune="zerolatency",
                           bit_rate=2_500_000)  # fmt: skip
        for run in range(args.runs):
            for path in ("idle", "jpeg", "encoded"):
                used, frames = measure(tmp / str(run), media, path, args.seconds)
                per = used / args.seconds
                print(f"run {run} {path:8s} {frames:4d} frames in {args.seconds:.0f} s: {per * 1000:6.1f} ms CPU per s")


if __name__ == "__main__":
    main()
