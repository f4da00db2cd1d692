"""Latency livesight adds to chat requests that read the encoded frame store (decode on demand).

    .venv/bin/python -m bench.store_reads [--requests 200] [--codec vp8|h264]

Like bench/query.py (a zero-latency fake vLLM on loopback, livesight in a second process, this load
generator in a third), but the stream holds what WebRTC ingest keeps: a 1280x720 ~2 Mbit/s clip of
the numbered test pattern with camera noise, encoded with a keyframe every 2 s, and it is *live*: 70 s
are stored at start, then a new frame is appended every 1/30 s (the clip loops at a keyframe). The JPEG
cache is off (`decode_cache_mb=0`), so every read decodes. Scenarios, each request a fresh reference:

- `frame_index=-1`, warm: a client polling the newest frame (its live decoder follows the stream);
- a random retained frame (`frame_index=N`, N uniform over the retained range): GOP replay, cold;
- a 10 s segment at 1 fps at a random start (`start_frame_index`/`end_frame_index`): 10 frames in 5-6 GOPs.

Added latency = livesight's percentile minus the fake's for the same frames sent inline. Every answer's
`overshoot.frames` is checked against the request, and a sample of the frames read back is checked to
show its own number (the pattern's pixels), so a fast wrong answer cannot pass.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.query import MODEL, ROOT, body_for, measure, pct

FPS, SECONDS, GOP = 30, 70, 60


def serve_livesight(upstream: str, codec: str) -> None:
    import uvicorn
    from tests.support.encoded import clip, frames

    from livesight.api.app import create_app
    from livesight.settings import ModelConfig, load_settings
    from livesight.store.keys import SQLiteKeyStore

    datas = clip(codec, 300, gop=GOP, width=1280, height=720, bit_rate=2_000_000, noise=3.0)
    items = frames(codec, datas)
    data = tempfile.mkdtemp(prefix="livesight-bench-")
    model = ModelConfig(id="bench", base_url=upstream, upstream_model=MODEL, profile="vllm", max_frames=256)
    settings = load_settings(
        None,
        data_dir=Path(data),
        port=0,
        models=[model],
        builtin_models=[],
        log_level="warning",
        log_format="text",
        decode_cache_mb=0,
    )
    keys = SQLiteKeyStore(Path(data) / "keys.db")
    app = create_app(settings, keys=keys)
    key = keys.create("bench")[1]
    registry = app.components.registry
    stream = registry.create(keys.list()[0].owner)
    target = registry.ingest_target(stream.id)
    assert target is not None

    def push(n: int) -> None:
        item = items[n % len(items)]
        target.push_frame(type(item)(item.session, n * 1000 / FPS, item.width, item.height, item.payload))

    for n in range(FPS * SECONDS):
        push(n)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)

    async def feed() -> None:
        n = FPS * SECONDS
        started = time.perf_counter()
        while True:
            push(n)
            n += 1
            await asyncio.sleep(max(0.0, started + (n - FPS * SECONDS) / FPS - time.perf_counter()))

    async def run() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for this)
            await asyncio.sleep(0.01)
        feeder = asyncio.create_task(feed())
        port = server.servers[0].sockets[0].getsockname()[1]
        print(json.dumps({"url": f"http://127.0.0.1:{port}", "key": key, "stream_id": stream.id}), flush=True)
        await task
        feeder.cancel()

    asyncio.run(run())


def spawn(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    """Start a child that prints one JSON line when ready (this checkout's code first on its path)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line:
        proc.kill()
        raise RuntimeError(f"{args} did not start")
    return proc, line


def part(stream_id: str, kind: str, query: str) -> dict[str, Any]:
    return {"type": kind, kind: {"url": f"ovs://streams/{stream_id}?{query}"}}


def check_numbers(ls: httpx.Client, stream_id: str, indexes: list[int]) -> None:
    """The frames read show their own numbers (the clip loops every 300 frames)."""
    from tests.support.encoded import number

    for index in indexes:
        jpeg = ls.get(f"/v1/streams/{stream_id}/frames/{index}").content
        assert number(jpeg) == index % 300, (index, number(jpeg))


def run_scenario(
    ls: httpx.Client, direct: httpx.Client, stream_id: str, make: Any, n: int, rng: random.Random
) -> dict[str, Any]:
    lat_ls: list[float] = []
    used: list[int] = []
    for _ in range(n):
        status = ls.get(f"/v1/streams/{stream_id}").json()
        body = body_for(make(status, rng))
        t = time.perf_counter()
        r = ls.post("/v1/chat/completions", json=body)
        lat_ls.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text[:300]
        used += r.json()["overshoot"]["frames"][0]["frame_indexes"]
    check_numbers(ls, stream_id, rng.sample(used, min(10, len(used))))
    inline = json.dumps(direct_inline(ls, stream_id, body)).encode()
    lat_direct = measure(direct, "/v1/chat/completions", inline, max(20, n // 2))
    frames = len(r.json()["overshoot"]["frames"][0]["frame_indexes"])
    return {
        "frames": frames,
        "livesight_p50": pct(lat_ls, 50),
        "livesight_p99": pct(lat_ls, 99),
        "direct_p50": pct(lat_direct, 50),
        "added_p50": pct(lat_ls, 50) - pct(lat_direct, 50),
        "added_p99": pct(lat_ls, 99) - pct(lat_direct, 50),
    }


def direct_inline(ls: httpx.Client, stream_id: str, body: dict[str, Any]) -> dict[str, Any]:
    from bench.query import direct_body

    return direct_body(ls, stream_id, body["messages"][0]["content"][0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--codec", choices=["vp8", "h264"], default="vp8")
    ap.add_argument("--serve-livesight", metavar="UPSTREAM", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_livesight:
        serve_livesight(args.serve_livesight, args.codec)
        return
    fake, upstream = spawn([sys.executable, "-m", "tests.support.fake_upstream", "--no-validate"])
    ls_proc, info_line = spawn(
        [sys.executable, "-m", "bench.store_reads", "--codec", args.codec, "--serve-livesight", upstream]
    )
    info = json.loads(info_line)
    sid = info["stream_id"]
    rng = random.Random(1)

    def random_frame(status: dict[str, Any], r: random.Random) -> dict[str, Any]:
        lo, hi = max(1, status["first_available_frame_index"]), status["last_frame_index"] - 30
        return part(sid, "image_url", f"frame_index={r.randint(lo, hi)}")

    def segment(status: dict[str, Any], r: random.Random) -> dict[str, Any]:
        lo, hi = max(1, status["first_available_frame_index"]), status["last_frame_index"] - 330
        start = r.randint(lo, hi)
        return part(sid, "video_url", f"start_frame_index={start}&end_frame_index={start + 300}&max_fps=1")

    def newest(status: dict[str, Any], r: random.Random) -> dict[str, Any]:
        return part(sid, "image_url", "frame_index=-1")

    results: dict[str, Any] = {}
    try:
        with (
            httpx.Client(base_url=info["url"], headers={"Authorization": f"Bearer {info['key']}"}, timeout=30) as ls,
            httpx.Client(base_url=upstream.removesuffix("/v1"), timeout=30) as direct,
        ):
            results["random retained frame (cold)"] = run_scenario(ls, direct, sid, random_frame, args.requests, rng)
            results["10 s segment at 1 fps"] = run_scenario(ls, direct, sid, segment, args.requests // 2, rng)
            run_scenario(ls, direct, sid, newest, 10, rng)  # warm-up: the first read starts the live decoder
            results["frame_index=-1 (warm)"] = run_scenario(ls, direct, sid, newest, args.requests, rng)
    finally:
        for proc in (ls_proc, fake):
            proc.terminate()
            proc.wait(10)
    print(f"codec {args.codec}, 1280x720 ~2 Mbit/s, keyframe every {GOP} frames, JPEG cache off")
    print(f"{'scenario':32} {'frames':>6} {'added p50':>10} {'added p99':>10} {'ls p50':>8} {'ls p99':>8}")
    for name, r in results.items():
        print(
            f"{name:32} {r['frames']:6d} {r['added_p50']:8.2f}ms {r['added_p99']:8.2f}ms "
            f"{r['livesight_p50']:6.2f}ms {r['livesight_p99']:6.2f}ms"
        )
    print(json.dumps({"codec": args.codec, "latency_ms": results}))


if __name__ == "__main__":
    main()
