"""Ingest benchmark: N synthetic 720p30 streams published over WebRTC into the embedded endpoint.

    scripts/netns --run .venv/bin/python -m bench.ingest --publisher cheap --curve 4,16,32,40 --seconds 30
    scripts/netns --run .venv/bin/python -m bench.ingest --publisher sdk --streams 4 --seconds 60

(WebRTC needs the private network namespace, see docs/benchmarks.md.) The server runs in this process
(the real app on a free port, in a thread), so its CPU time and memory are this process's; publishers run
in child processes and are measured apart. Publishers (`--publisher`):

- `cheap`: `bench/cheap_publisher.py`, aiortc sending the pre-encoded clip of `bench/clip.py` through the
  same LiveKit signalling as the SDK, `--per-process` streams per child (the scale runs);
- `sdk`: the official `livekit` SDK fed the same pre-encoded clip (`EncodedVideoSource`), one child per
  stream (`pre-encoded` is the old name);
- `sdk-encode`: the SDK encodes every frame of the live test pattern (the `livesight publish` path).

Each point of `--curve` (or the single `--streams`) is a fresh server with fresh publishers: connect,
wait for frames on every stream, warm up, then measure `--seconds`. One JSON line per point, then a
markdown table of all points. Per point:

- fps kept per stream over the window (median, min) and frames received vs sent (window and whole run);
- server CPU core-seconds per stream-second (this process's CPU / (N x window)) and its split by thread;
- publisher CPU core-seconds per stream-second (the children's CPU over the same window);
- event-loop lag of the server's loop: a probe task sleeps 20 ms again and again; overshoot p50/p99/max;
- RSS per stream ((RSS now - RSS before publishing) / N) at the end of the window, and sampled during it
  (`rss_mb_per_stream_series`: [seconds into the window, MB per stream]; `--seconds 600` for the memory
  target);
- frame availability latency p50/p95 (`--latency-seconds`, after the window): publisher capture time of
  frame n (its number is drawn in the pixels, read back from `GET /v1/streams/{id}/frames/{index}`) to the
  first `GET /v1/streams/{id}` that shows it as `last_frame_index` (polled every `--poll-ms`).

`--viewers V` adds V SDK viewers per stream (`bench/sdk_viewer.py`, in child processes joined after the
publishers' first frames), so the server CPU includes forwarding to them; `viewer_fps_median` is what a
viewer received over the window. `--viewers 0,4` measures a point without and one with 4 viewers per
stream in one run: their difference is the CPU a viewer costs (docs/benchmarks.md).

`--setting KEY=VALUE` passes a server setting (a `Settings` field, value parsed as JSON if it parses).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.server import run_server

import livesight
from bench import ingest_latency, measure
from bench.clip import ClipSpec, load_or_encode
from livesight.core.clock import SystemClock

ROOT = Path(__file__).resolve().parents[1]


class Publishers:
    """The publisher child processes of one point, and where each writes its results."""

    def __init__(self, args: argparse.Namespace, streams: list[dict[str, Any]], workdir: Path, total: float) -> None:
        self.stop_file = workdir / "stop"
        self.children: list[tuple[subprocess.Popen[bytes], Path]] = []
        clip = ["--codec", args.codec, "--width", str(args.width), "--height", str(args.height),
                "--fps", str(args.fps), "--bitrate", str(args.bitrate), "--gop", str(args.gop)]  # fmt: skip
        common = ["--seconds", str(total), "--stop-file", str(self.stop_file), *clip]
        # this checkout's src first, like the server in this process (see `livesight_src` in the output)
        path = [str(Path(livesight.__file__).parents[1]), str(ROOT), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
        if args.publisher == "cheap":
            groups = [streams[i : i + args.per_process] for i in range(0, len(streams), args.per_process)]
            for i, group in enumerate(groups):
                listing, out = workdir / f"streams-{i}.json", workdir / f"child-{i}.json"
                listing.write_text(json.dumps([s["publish"] for s in group]))
                cmd = [sys.executable, "-m", "bench.cheap_publisher", "--streams", str(listing), "--out", str(out)]
                cmd += ["--ignore-pli"] if args.ignore_pli else []
                self.children.append((subprocess.Popen([*cmd, *common], cwd=ROOT, env=env), out))
        else:
            encode = ["--encode"] if args.publisher == "sdk-encode" else []
            for i, stream in enumerate(streams):
                out = workdir / f"child-{i}.json"
                cmd = [sys.executable, "-m", "bench.sdk_publisher", "--url", stream["publish"]["url"],
                       "--token", stream["publish"]["token"], "--out", str(out), *encode]  # fmt: skip
                self.children.append((subprocess.Popen([*cmd, *common], cwd=ROOT, env=env), out))

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc, _ in self.children]

    def finish(self, timeout: float) -> list[dict[str, Any]]:
        """Stop every publisher; one result per stream, in stream order."""
        self.stop_file.touch()
        results: list[dict[str, Any]] = []
        for proc, out in self.children:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            data = json.loads(out.read_text()) if out.exists() else {"error": f"exit status {proc.returncode}"}
            results += data.get("streams", [data])
        return results

    def kill(self) -> None:
        for proc, _ in self.children:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


class Viewers:
    """`--viewers` SDK viewers per stream, in one child process that counts the frames they decode."""

    def __init__(
        self, args: argparse.Namespace, server: Any, key: str, ids: list[str], workdir: Path, total: float
    ) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.out = workdir / "viewers.json"
        self.progress = workdir / "viewers-progress"
        self.stop_file = workdir / "viewers-stop"
        self._mark: dict[str, int] = {}
        self._mark_at = 0.0
        self.ingest = server.components.ingest
        if args.viewers <= 0:
            return
        with server.client(key) as c:
            views = [c.post(f"/v1/streams/{s}/viewer-token").json()["view"] for s in ids for _ in range(args.viewers)]
        listing = workdir / "viewers-tokens.json"
        listing.write_text(json.dumps(views))
        cmd = [sys.executable, "-m", "bench.sdk_viewer", "--tokens", str(listing), "--out", str(self.out)]
        cmd += ["--stop-file", str(self.stop_file), "--seconds", str(total)]
        self.proc = subprocess.Popen(cmd, cwd=ROOT)
        deadline = time.monotonic() + 30 + len(views)
        while self._sent_total() is None or len(self._sent()) < len(views):
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(self._sent())} of {len(views)} viewers are receiving")
            time.sleep(0.5)

    def _sent(self) -> dict[str, int]:
        """Frames the server sent each viewer so far (its own count), by viewer identity."""
        return {
            v.identity: v.frames_sent for vs in list(self.ingest.viewers.values()) for v in list(vs) if v.frames_sent
        }

    def _sent_total(self) -> int | None:
        sent = self._sent()
        return sum(sent.values()) if sent else None

    def mark(self) -> None:
        self._mark, self._mark_at = self._sent(), time.monotonic()

    def fps_since_mark(self) -> list[float]:
        if self.proc is None:
            return []
        now, window = self._sent(), time.monotonic() - self._mark_at
        return [(now.get(k, 0) - v) / window for k, v in self._mark.items()]

    def kill(self) -> None:
        self.stop_file.touch()
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            out[name] = json.loads(value)
        except json.JSONDecodeError:
            out[name] = value
    return out


def _last_index(stream: dict[str, Any]) -> int:
    """The newest lifetime index, -1 before the first frame (indexes start at 0)."""
    index = stream["last_frame_index"]
    return -1 if index is None else int(index)


def run_point(args: argparse.Namespace, n: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="livesight-bench-"))
    total = args.warmup + args.seconds + args.latency_seconds + 120 + 2 * n  # upper bound; stopped by stop file
    overrides: dict[str, Any] = {"max_active_streams_per_key": max(20, n), "stream_ttl_seconds": int(total) + 600}
    overrides |= parse_settings(args.setting)
    load_start = os.getloadavg()[0]
    with run_server(workdir, clock=SystemClock(), host=args.host, log_level="warning", **overrides) as server:
        key = server.new_key()
        with server.client(key) as c:
            streams = [c.post("/v1/streams").json() for _ in range(n)]
        ids = [s["id"] for s in streams]
        rss_before = measure.rss_bytes()
        publishers, started = Publishers(args, streams, workdir, total), time.monotonic()
        try:

            def last_indexes() -> list[int]:
                with server.client(key) as c:
                    return [_last_index(c.get(f"/v1/streams/{s}").json()) for s in ids]

            deadline = time.monotonic() + 60 + 2 * n  # publishers start, connect, publish
            while min(last_indexes()) < 0 and time.monotonic() < deadline:
                time.sleep(0.5)
            viewers = Viewers(args, server, key, ids, workdir, total)
            time.sleep(args.warmup)

            start_idx, cpu0, threads0 = last_indexes(), measure.cpu_seconds(), measure.thread_cpu()
            viewers.mark()
            pub0, t0 = measure.process_cpu(publishers.pids), time.monotonic()
            lag_future = asyncio.run_coroutine_threadsafe(measure.loop_lag(args.seconds), server._loop)
            series, interval = [], max(1.0, args.seconds / 20)
            while (left := t0 + args.seconds - time.monotonic()) > 0:
                time.sleep(min(interval, left))
                growth = (measure.rss_bytes() - rss_before) / n / 2**20
                series.append([round(time.monotonic() - t0), round(growth, 1)])
            end_idx, cpu1, threads1 = last_indexes(), measure.cpu_seconds(), measure.thread_cpu()
            viewer_fps = viewers.fps_since_mark()
            pub1, t1 = measure.process_cpu(publishers.pids), time.monotonic()
            rss_after = measure.rss_bytes()
            lags = lag_future.result(timeout=30)
            window = t1 - t0
            roles = measure.cpu_by_role(threads0, threads1)
            seen = ingest_latency.poll(server.base_url, key, ids, args.latency_seconds, args.poll_ms, args.latency_via)
            results = publishers.finish(timeout=60)
            total_s = time.monotonic() - started
            latencies = ingest_latency.latencies_ms(seen, results)
            with server.client(key) as c:
                final = [c.get(f"/v1/streams/{s}").json() for s in ids]
        finally:
            publishers.kill()
            viewers.kill()
    fps = [(b - a) / window for a, b in zip(start_idx, end_idx, strict=True)]
    received = [_last_index(f) + 1 for f in final]
    sent = [int(r.get("sent") or 0) for r in results]
    errors = sorted(
        {str(r["error"]) for r in results if r.get("error")} | {f["last_error"] for f in final if f.get("last_error")}
    )
    return {
        "streams": n,
        "codec": args.codec,
        "publisher": args.publisher,
        "size": f"{args.width}x{args.height}@{args.fps}",
        "bitrate": args.bitrate,
        "measured_seconds": round(window, 1),
        "fps_kept_median": round(measure.median(fps), 1),
        "fps_kept_min": round(min(fps), 1),
        "window_received_ratio": round(sum(fps) / (n * args.fps), 3),
        "frames_sent": sum(sent),
        "frames_received": sum(received),
        "received_ratio": round(sum(received) / max(1, sum(sent)), 3),
        "server_cpu_s_per_stream_s": round((cpu1 - cpu0) / (n * window), 4),
        "viewers_per_stream": args.viewers,
        "viewer_fps_median": round(measure.median(viewer_fps), 1) if viewer_fps else None,
        "server_cpu_share": {k: round(v / max(1e-9, cpu1 - cpu0), 3) for k, v in sorted(roles.items())},
        "publisher_cpu_s_per_stream_s": round((pub1 - pub0) / (n * window), 4),
        "publisher_processes": len(publishers.children),
        "keyframe_requests_per_stream_s": round(sum(r.get("keyframe_requests", 0) for r in results) / (n * total_s), 3)
        if args.publisher == "cheap"
        else None,
        "publisher_bitrate_bps_median": round(measure.median([r["bitrate_bps"] for r in results]))
        if all("bitrate_bps" in r for r in results)
        else None,
        "loop_lag_ms_p50": round(measure.percentile(lags, 50), 2),
        "loop_lag_ms_p99": round(measure.percentile(lags, 99), 2),
        "loop_lag_ms_max": round(max(lags), 1),
        "rss_mb_per_stream": round((rss_after - rss_before) / n / 2**20, 1),
        "rss_mb_per_stream_series": series,
        "latency_ms_p50": round(measure.percentile(latencies, 50), 1) if latencies else None,
        "latency_ms_p95": round(measure.percentile(latencies, 95), 1) if latencies else None,
        "latency_samples": len(latencies),
        "latency_via": args.latency_via,
        "resolution_received": sorted({f"{f['width']}x{f['height']}" for f in final}),
        # what the store keeps (JPEGs on main, the bitstream with an encoded store), if the server reports it
        "retained_mb_per_stream": round(measure.median([f["retained_bytes"] / 2**20 for f in final]), 1)
        if all(isinstance(f.get("retained_bytes"), int) for f in final)
        else None,
        "retained_frames_per_stream": round(measure.median([f["retained_frame_count"] for f in final])),
        "errors": errors,
        "load_avg_1m_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "livesight_src": str(Path(livesight.__file__).parent),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
    }


def table(points: list[dict[str, Any]]) -> str:
    rows = [
        "| streams | viewers per stream (fps) | codec | publisher | fps kept median / min | received / sent (window) "
        "| server CPU core-s per stream-s | publisher CPU per stream-s | loop lag p50 / p99 ms | RSS MB per stream "
        "| load avg 1m |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in points:
        rows.append(
            f"| {p['streams']} | {p['viewers_per_stream']} ({p['viewer_fps_median']}) "
            f"| {p['codec']} | {p['publisher']} "
            f"| {p['fps_kept_median']} / {p['fps_kept_min']} "
            f"| {p['window_received_ratio']} | {p['server_cpu_s_per_stream_s']} | {p['publisher_cpu_s_per_stream_s']} "
            f"| {p['loop_lag_ms_p50']} / {p['loop_lag_ms_p99']} "
            f"| {p['rss_mb_per_stream']} ({p['measured_seconds']:g} s) "
            f"| {p['load_avg_1m_start_end'][0]} → {p['load_avg_1m_start_end'][1]} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--curve", help="comma-separated stream counts, one fresh run each (e.g. 4,16,32,40)")
    parser.add_argument("--seconds", type=float, default=60, help="measured window (CPU, fps, RSS, loop lag)")
    parser.add_argument("--warmup", type=float, default=8)
    parser.add_argument("--latency-seconds", type=float, default=10, help="0 skips the latency measurement")
    parser.add_argument("--poll-ms", type=float, default=5)
    parser.add_argument(
        "--latency-via",
        choices=("status", "frame"),
        default="status",
        help="status: last_frame_index in GET /v1/streams/{id}; frame: the pixels of GET .../frames/-1",
    )
    parser.add_argument("--publisher", choices=("cheap", "sdk", "pre-encoded", "sdk-encode"), default="sdk")
    parser.add_argument(
        "--viewers", default="0", help="SDK viewers per stream (forwarding cost); comma-separated: one point each"
    )
    parser.add_argument("--per-process", type=int, default=10, help="streams per cheap publisher process")
    parser.add_argument("--codec", default="vp8", choices=("vp8", "h264"))
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--bitrate", type=int, default=2_000_000, help="clip bitrate (sdk-encode: encoder cap)")
    parser.add_argument("--gop", type=int, default=60, help="keyframe every GOP frames in the pre-encoded clip")
    parser.add_argument("--ignore-pli", action="store_true", help="cheap publishers ignore keyframe requests")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE", help="server setting")
    parser.add_argument("--json", metavar="PATH", help="also append the JSON lines here")
    args = parser.parse_args()
    if args.publisher == "pre-encoded":
        args.publisher = "sdk"
    if os.environ.get("LIVESIGHT_NETNS") != "1":
        sys.exit("run inside the network namespace: scripts/netns --run .venv/bin/python -m bench.ingest ...")
    if args.publisher != "sdk-encode":  # encode the clip once, before the children need it
        load_or_encode(ClipSpec(args.codec, args.width, args.height, args.fps, args.bitrate, args.gop))
    counts = [int(c) for c in args.curve.split(",")] if args.curve else [args.streams]
    viewer_counts = [int(v) for v in str(args.viewers).split(",")]
    points = []
    for n, args.viewers in ((n, v) for n in counts for v in viewer_counts):
        point = run_point(args, n)
        points.append(point)
        line = json.dumps(point)
        print(line, flush=True)
        if args.json:
            with open(args.json, "a") as fh:
                fh.write(line + "\n")
    print()
    print(table(points))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
