"""Ingest benchmark: N synthetic streams published with the livekit SDK into the embedded endpoint.

    scripts/netns --run .venv/bin/python -m bench.ingest --streams 4 --seconds 60

(WebRTC needs the private network namespace, see
docs/benchmarks.md.) The server runs in this process (the real app on a free port, in a thread) so
its CPU time and memory are this process's; publishers run in child processes (their encoding is
not counted). Reports, per run:

- frames received vs sent, and the received frame rate per stream during the measured window;
- server CPU seconds per stream-second (process CPU time over the window / (N x window));
- RSS per stream after the window ((RSS now - RSS before publishing) / N);
- frame availability latency, p50 and p95: from the publisher's capture time of frame n (its
  number is drawn in the pixels) to the first `GET /v1/streams/{id}` that shows it as
  `last_frame_index` (polled every `--poll-ms`, which adds up to that much; half on average).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pickle
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import simplejpeg
from tests.support.server import LiveServer, run_server

from livesight.core.clock import SystemClock
from livesight.ingest.pattern import read_frame_number


def rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def thread_cpu() -> dict[int, float]:
    """CPU seconds of each thread of this process, by native thread id."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError), open(f"/proc/self/task/{tid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
            out[int(tid)] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def cpu_by_role(before: dict[int, float], after: dict[int, float]) -> dict[str, float]:
    """Where the server's CPU went: event loop (RTP/SRTP/HTTP), aiortc decoders, JPEG workers, other."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    roles: dict[str, float] = {}
    for tid, seconds in after.items():
        name = names.get(tid, "other")
        role = (
            "event loop (RTP, SRTP, jitter buffer, signalling, HTTP)" if name == "livesight-test-server"
            else "JPEG workers (range conversion + libjpeg-turbo)" if name.startswith("livesight-jpeg")
            else "aiortc decoder threads (VP8 decode + frame copy)" if "decoder" in name
            else "other (bench main thread, libraries)"
        )  # fmt: skip
        roles[role] = roles.get(role, 0.0) + seconds - before.get(tid, 0.0)
    return roles


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- publisher child ----------------------------------------------------------------------------------


LOOP_FRAMES = 300  # pre-encoded loop length: frame numbers in the pixels repeat every 10 s at 30 fps


def pre_encode(width: int, height: int, fps: float, bitrate: int) -> list[tuple[bytes, bool]]:
    """The test pattern's first LOOP_FRAMES frames as VP8 (keyframe every second), encoded once."""
    from fractions import Fraction

    import av
    import numpy as np

    from livesight.ingest.pattern import TestPattern

    pattern = TestPattern(width, height)
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.bit_rate, codec.time_base, codec.gop_size = bitrate, Fraction(1, round(fps)), round(fps)
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    packets = []
    for n in range(LOOP_FRAMES):
        data = np.frombuffer(pattern.render(n), np.uint8).reshape(height * 3 // 2, width)
        frame = av.VideoFrame.from_ndarray(data, format="yuv420p")
        frame.pts = n
        packets += codec.encode(frame)
    packets += codec.encode(None)
    return [(bytes(p), bool(p.is_keyframe)) for p in packets]


async def child_pre_encoded(args: argparse.Namespace) -> dict[str, Any]:
    """Publish pre-encoded VP8 through the SDK (no encoding at publish time: cheap publishers)."""
    from livekit import rtc

    encoded = pickle.loads(Path(args.encoded).read_bytes())  # noqa: ASYNC240 (before connecting)
    room = rtc.Room()
    await asyncio.wait_for(room.connect(args.url, args.token, rtc.RoomOptions(auto_subscribe=False)), 30)
    source = rtc.EncodedVideoSource(args.width, args.height)
    track = rtc.LocalVideoTrack.create_video_track("camera", source)
    options = rtc.TrackPublishOptions(
        source=rtc.TrackSource.SOURCE_CAMERA,
        simulcast=False,
        video_codec=rtc.VideoCodec.VP8,
        video_encoder=rtc.VideoEncoderBackend.ENCODER_BACKEND_PRE_ENCODED,
    )
    await room.local_participant.publish_track(track, options)
    captured: dict[int, float] = {}
    cpu0, t0 = cpu_seconds(), time.monotonic()
    n = 0
    while time.monotonic() - t0 < args.seconds and not Path(args.stop_file).exists():  # noqa: ASYNC240
        delay = t0 + n / args.fps - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        data, key = encoded[n % len(encoded)]
        now = time.time()
        frame_type = rtc.EncodedFrameType.ENCODED_FRAME_KEY if key else rtc.EncodedFrameType.ENCODED_FRAME_DELTA
        source.capture_frame(
            rtc.EncodedVideoFrame(data, args.width, args.height, rtc.VideoCodec.VP8, frame_type, int(now * 1e6))
        )
        captured[n] = now
        n += 1
    cpu = (cpu_seconds() - cpu0) / (time.monotonic() - t0)
    await room.disconnect()
    await source.aclose()
    return {"sent": n, "captured": captured, "cpu_per_s": cpu, "loop": len(encoded)}


async def child_main(args: argparse.Namespace) -> dict[str, Any]:
    if args.publisher == "pre-encoded":
        return await child_pre_encoded(args)
    from livesight.ingest.publisher import PatternSource, PublishStats, publish

    stats = PublishStats(capture_times={})
    cpu0, t0 = cpu_seconds(), time.monotonic()
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(args.seconds, stop.set)

    async def watch_stop_file() -> None:
        while not Path(args.stop_file).exists():  # noqa: ASYNC240, ASYNC110 (another process signals)
            await asyncio.sleep(0.1)
        stop.set()

    watcher = asyncio.create_task(watch_stop_file())
    source = PatternSource(args.width, args.height, args.fps)
    await publish(args.url, args.token, source, codec=args.codec, max_bitrate=args.max_bitrate, stats=stats, stop=stop)
    cpu = (cpu_seconds() - cpu0) / (time.monotonic() - t0)
    watcher.cancel()
    return {"sent": stats.frames_sent, "captured": stats.capture_times, "cpu_per_s": cpu}


# --- the run --------------------------------------------------------------------------------------------


def frame_numbers(server: LiveServer, stream_id: str, indexes: list[int]) -> dict[int, int | None]:
    async def read() -> dict[int, bytes]:
        registry = server.components.registry
        window = registry.window(registry._streams[stream_id])
        out = {}
        for i in indexes:
            if window is not None and i in window:
                with contextlib.suppress(Exception):  # evicted or undecodable: not counted
                    (out[i],) = await window.jpegs([i], "bench")
        return out

    jpegs = server.call(read)
    return {i: read_frame_number(simplejpeg.decode_jpeg(j, colorspace="GRAY")[:, :, 0]) for i, j in jpegs.items()}


def poll_newest(
    base_url: str, key: str, stream_ids: list[str], seconds: float, poll_ms: float
) -> dict[str, dict[int, float]]:
    """First wall time each stream's GET showed each last_frame_index."""
    seen: dict[str, dict[int, float]] = {s: {} for s in stream_ids}
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=5) as client:
        while time.monotonic() < deadline:
            tick = time.monotonic()
            for sid in stream_ids:
                index = client.get(f"/v1/streams/{sid}").json()["last_frame_index"]
                if index is not None and index not in seen[sid]:
                    seen[sid][index] = time.time()
            time.sleep(max(0.0, poll_ms / 1000 - (time.monotonic() - tick)))
    return seen


async def loop_lag(seconds: float, interval: float = 0.01) -> list[float]:
    """How late the server's event loop wakes a 10 ms timer, in ms (its blocking, seen from inside)."""
    loop = asyncio.get_running_loop()
    lags = []
    end = loop.time() + seconds
    while loop.time() < end:
        due = loop.time() + interval
        await asyncio.sleep(interval)
        lags.append((loop.time() - due) * 1000)
    return lags


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="livesight-bench-"))
    total = args.warmup + args.seconds + args.latency_seconds + 120  # upper bound; stopped by the stop file
    stop_file = workdir / "stop"
    with run_server(workdir, clock=SystemClock(), host=args.host, log_format="text", log_level="warning") as server:
        key = server.new_key()
        with server.client(key) as c:
            streams = [c.post("/v1/streams").json() for _ in range(args.streams)]
        ids = [s["id"] for s in streams]
        encoded = workdir / "encoded.pickle"
        if args.publisher == "pre-encoded":
            encoded.write_bytes(pickle.dumps(pre_encode(args.width, args.height, args.fps, args.max_bitrate)))
        rss_before = rss_bytes()
        children = []
        for i, stream in enumerate(streams):
            out = workdir / f"child-{i}.json"
            cmd = [sys.executable, "-m", "bench.ingest", "--child", "--url", stream["publish"]["url"],
                   "--token", stream["publish"]["token"], "--seconds", str(total), "--out", str(out),
                   "--width", str(args.width), "--height", str(args.height), "--fps", str(args.fps),
                   "--codec", args.codec, "--max-bitrate", str(args.max_bitrate),
                   "--publisher", args.publisher, "--stop-file", str(stop_file),
                   "--encoded", str(encoded)]  # fmt: skip
            children.append((subprocess.Popen(cmd, cwd=Path(__file__).parents[1]), out))

        def last_indexes() -> list[int]:
            with server.client(key) as c:
                return [(c.get(f"/v1/streams/{s}").json()["last_frame_index"] or -1) for s in ids]

        deadline = time.monotonic() + 60  # publishers pre-encode, connect, publish
        while min(last_indexes()) < 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(args.warmup)

        start_idx, cpu0, threads0, t0 = last_indexes(), cpu_seconds(), thread_cpu(), time.monotonic()
        lag_future = asyncio.run_coroutine_threadsafe(loop_lag(args.seconds), server._loop)
        time.sleep(args.seconds)
        end_idx, cpu1, threads1, t1 = last_indexes(), cpu_seconds(), thread_cpu(), time.monotonic()
        roles = cpu_by_role(threads0, threads1)
        lags = lag_future.result(timeout=30)
        rss_after = rss_bytes()
        window = t1 - t0
        fps = [(b - a) / window for a, b in zip(start_idx, end_idx, strict=True)]

        seen = poll_newest(server.base_url, key, ids, args.latency_seconds, args.poll_ms)
        stop_file.touch()
        for proc, _ in children:
            proc.wait(timeout=total + 60)
        results = [json.loads(out.read_text()) for _, out in children]
        latencies: list[float] = []
        for sid, result in zip(ids, results, strict=True):
            loop = result.get("loop") or (1 << 16)
            by_number: dict[int, list[float]] = {}
            for n, t in sorted(((int(n), t) for n, t in result["captured"].items())):
                by_number.setdefault(n % loop, []).append(t)
            numbers = frame_numbers(server, sid, sorted(seen[sid]))
            for index, shown_at in seen[sid].items():
                n = numbers.get(index)
                # the latest capture of that picture before it was seen (pictures repeat every loop)
                times = [t for t in by_number.get(n % loop, []) if t <= shown_at] if n is not None else []
                if times:
                    latencies.append((shown_at - times[-1]) * 1000)
        with server.client(key) as c:
            final = [c.get(f"/v1/streams/{s}").json() for s in ids]
    received = [(f["last_frame_index"] or -1) + 1 for f in final]
    sent = [r["sent"] for r in results]
    return {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
        "streams": args.streams,
        "size": f"{args.width}x{args.height}@{args.fps:g}",
        "codec": args.codec,
        "publisher": args.publisher,
        "measured_seconds": round(window, 1),
        "frames_sent": sent,
        "frames_received": received,
        "received_ratio": round(sum(received) / max(1, sum(sent)), 3),
        "fps_per_stream": [round(f, 1) for f in fps],
        "window_received_ratio": round(sum(fps) / (args.streams * args.fps), 3),
        "server_cpu_s_per_stream_s": round((cpu1 - cpu0) / (args.streams * window), 3),
        "publisher_cpu_s_per_stream_s": round(sum(r["cpu_per_s"] for r in results) / len(results), 3),
        "server_cpu_share": {k: round(v / max(1e-9, cpu1 - cpu0), 3) for k, v in sorted(roles.items())},
        "rss_mb_per_stream": round((rss_after - rss_before) / args.streams / 2**20, 1),
        "latency_ms_p50": round(percentile(latencies, 50), 1) if latencies else None,
        "latency_ms_p95": round(percentile(latencies, 95), 1) if latencies else None,
        "latency_samples": len(latencies),
        "event_loop_lag_ms_p50_p99_max": [
            round(percentile(lags, 50), 1),
            round(percentile(lags, 99), 1),
            round(max(lags), 1),
        ],
        "resolution_received": sorted({(f["width"], f["height"]) for f in final}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60, help="measured window (CPU, fps, RSS)")
    parser.add_argument("--warmup", type=float, default=8)
    parser.add_argument("--latency-seconds", type=float, default=10)
    parser.add_argument("--poll-ms", type=float, default=5)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=float, default=30)
    parser.add_argument("--codec", default="vp8", choices=("vp8", "h264"))
    parser.add_argument("--max-bitrate", type=int, default=4_000_000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--publisher",
        choices=("pre-encoded", "sdk"),
        default="pre-encoded",
        help="pre-encoded: VP8 encoded once and fed to the SDK's EncodedVideoSource (cheap, so the host "
        "measures the server); sdk: the SDK encodes every frame (the `livesight publish` path)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--stop-file", help=argparse.SUPPRESS)
    parser.add_argument("--encoded", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        Path(args.out).write_text(json.dumps(asyncio.run(child_main(args))))
        return
    if os.environ.get("LIVESIGHT_NETNS") != "1":
        sys.exit("run inside the network namespace: scripts/netns --run .venv/bin/python -m bench.ingest ...")
    results = run(args)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
