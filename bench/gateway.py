"""CPU per `livekit_room` gateway stream: core-seconds per stream-second, in the gateway's own process.

scripts/netns --run .venv/bin/python -m bench.gateway [--seconds 10] [--streams 1] [--width 640 --height 480 --fps 15]

(WebRTC needs the private namespace's veth pair: run it through scripts/netns.) Instance A (this
process) hosts a stream that the `livekit` SDK publishes the numbered test pattern into (VP8). Instance
B runs in a subprocess (tests/support/server_process.py), so its CPU time is its own: first B idle for
`--seconds`, then B with `--streams` gateway streams, each joined to A's room with its own viewer token.
The difference of B's CPU (user + system, all threads: the SDK's decode, the JPEG encode, the loop) over
the window, divided by the stream-seconds, is the cost of one gateway stream; per stored frame too.
A's cost of serving the viewers is not in it (it forwards the publisher's VP8 as it is).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import threading
import time
from pathlib import Path

import httpx
from tests.e2e.media import publish_pattern
from tests.support.server import run_server
from tests.support.server_process import server_process

from livesight.core.clock import SystemClock

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, every thread."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=float, default=15.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, run_server(Path(directory), clock=SystemClock()) as a:
        key_a = a.new_key()
        with a.client(key_a) as c:
            created = c.post("/v1/streams").json()
            views = [c.post(f"/v1/streams/{created['id']}/viewer-token").json()["view"] for _ in range(args.streams)]
        publish = created["publish"]
        total = 2 * args.seconds + 15  # idle window, joins, measured window
        thread = threading.Thread(
            target=lambda: asyncio.run(
                publish_pattern(
                    publish["url"],
                    publish["token"],
                    seconds=total,
                    width=args.width,
                    height=args.height,
                    fps=args.fps,
                )
            ),
            daemon=True,
        )
        thread.start()
        settings = {
            "source_allowed_hosts": ["127.0.0.1"],
            "outbound_allow_cidrs": ["127.0.0.0/8"],
            "preload_builtin_models": False,
        }
        with server_process({"settings": settings, "frames": 1}) as b:
            pid = b.process.pid
            time.sleep(2)
            started = cpu_s(pid)
            time.sleep(args.seconds)
            idle = (cpu_s(pid) - started) / args.seconds
            ids = []
            with httpx.Client(base_url=b.url, headers={"Authorization": f"Bearer {b.key}"}, timeout=10) as c:
                for view in views:
                    source = {"type": "livekit_room", "url": view["url"], "token": view["token"]}
                    ids.append(c.post("/v1/streams", json={"source": source}).json()["id"])
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    states = [c.get(f"/v1/streams/{i}").json() for i in ids]
                    if all((s["last_frame_index"] or 0) >= 5 for s in states):
                        break
                    time.sleep(0.2)
                first = [s["last_frame_index"] or 0 for s in states]
                started = cpu_s(pid)
                time.sleep(args.seconds)
                busy = (cpu_s(pid) - started) / args.seconds
                last = [c.get(f"/v1/streams/{i}").json()["last_frame_index"] or 0 for i in ids]
        frames = sum(b - a for a, b in zip(first, last, strict=True))
        per_stream = (busy - idle) / args.streams
        fps = frames / args.seconds / args.streams
        print(
            f"{args.streams} gateway stream(s), {args.width}x{args.height}@{args.fps:g} VP8, {args.seconds:g} s: "
            f"B idle {idle * 1000:.0f} ms/s, busy {busy * 1000:.0f} ms/s; per stream {per_stream:.3f} core-s per "
            f"stream-s at {fps:.1f} stored fps ({per_stream / max(fps, 0.1) * 1000:.1f} ms CPU per frame)"
        )


if __name__ == "__main__":
    main()
