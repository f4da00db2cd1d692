"""Query latency on frames that arrived over WebRTC: the frame store's targets (issue 10).

    scripts/netns --run .venv/bin/python -m bench.query_store [--requests 100] [--fill-seconds 30]

Like `bench/query.py` (same zero-latency fake upstream, same "added latency" = livesight's percentile minus
the same request sent straight to the fake with the frames inlined), but the frames are not pushed into the
buffer as JPEGs: two 720p30 streams are published over WebRTC by `bench/cheap_publisher.py` (the pre-encoded
clip of `bench/clip.py`, a keyframe every `--gop` frames) and keep publishing while they are queried, so
whatever the server stores (JPEG per frame on main, the encoded bitstream with the frame store) is what
answers. After `--fill-seconds` of frames, three cases, `--requests` each, one at a time:

- `frame_index=-1, warm stream`: the newest frame of a stream that is queried continuously (it keeps a warm
  decoder at its live edge, if the store has one);
- `random retained frame, cold stream`: `frame_index=N` for a random retained lifetime index N of the other
  stream, a new N each request (no cache can hold them all);
- `10 s segment at 1 fps, cold stream`: `start_offset_ms=S&end_offset_ms=S+10000&max_fps=1` (offsets from
  the oldest retained frame) for a random S, the whole segment retained.

Prints a table and one JSON line (p50/p99 per case, livesight, direct and added). WebRTC needs the private
network namespace (scripts/netns).
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

from bench.clip import ClipSpec, load_or_encode
from bench.query import MODEL, ROOT, body_for, direct_body, measure, pct, spawn

WIDTH, HEIGHT, FPS = 1280, 720, 30


def serve_livesight(upstream: str) -> None:
    """The livesight process: the real app on a free port, one API key; prints url and key."""
    import uvicorn

    from livesight.api.app import create_app
    from livesight.settings import ModelConfig, load_settings
    from livesight.store.keys import SQLiteKeyStore

    data = Path(tempfile.mkdtemp(prefix="livesight-bench-"))
    model = ModelConfig(id="bench", base_url=upstream, upstream_model=MODEL, profile="vllm", max_frames=256)
    settings = load_settings(
        None, data_dir=data, port=0, models=[model], builtin_models=[], log_level="warning", log_format="text"
    )
    keys = SQLiteKeyStore(data / "keys.db")
    app = create_app(settings, keys=keys)
    key = keys.create("bench")[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False))

    async def run() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for this)
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        print(json.dumps({"url": f"http://127.0.0.1:{port}", "key": key}), flush=True)
        await task

    asyncio.run(run())


def image(stream_id: str, query: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": f"ovs://streams/{stream_id}?{query}"}}


def video(stream_id: str, query: str) -> dict[str, Any]:
    return {"type": "video_url", "video_url": {"url": f"ovs://streams/{stream_id}?{query}"}}


def retained(ls: httpx.Client, stream_id: str) -> tuple[int, int]:
    info = ls.get(f"/v1/streams/{stream_id}").json()
    return max(1, info["first_available_frame_index"] or 1), info["last_frame_index"] or 0


def retained_ms(ls: httpx.Client, stream_id: str) -> int:
    info = ls.get(f"/v1/streams/{stream_id}").json()
    return int((info["last_frame_at_ms"] or 0) - (info["first_available_frame_at_ms"] or 0))


def run_case(
    ls: httpx.Client, direct: httpx.Client, stream_id: str, parts: list[dict[str, Any]], warmup: int
) -> dict[str, Any]:
    """Each of `parts` once through livesight, alternating in blocks with one representative direct body."""
    inline = json.dumps(direct_body(ls, stream_id, parts[0], (WIDTH, HEIGHT))).encode()
    bodies = [json.dumps(body_for(p)).encode() for p in parts]
    answer = ls.post("/v1/chat/completions", content=bodies[0], headers={"content-type": "application/json"})
    frames = len(answer.json()["overshoot"]["frames"][0]["frame_indexes"])
    for body in bodies[:warmup]:
        measure(ls, "/v1/chat/completions", body, 1)
    measure(direct, "/v1/chat/completions", inline, warmup)
    lat_ls: list[float] = []
    lat_direct: list[float] = []
    for start in range(0, len(bodies), 10):
        for body in bodies[start : start + 10]:
            lat_ls += measure(ls, "/v1/chat/completions", body, 1)
        lat_direct += measure(direct, "/v1/chat/completions", inline, min(10, len(bodies) - start))
    return {
        "frames_per_request": frames,
        "request_kib_direct": round(len(inline) / 1024, 1),
        "requests": len(lat_ls),
        "livesight_p50": round(pct(lat_ls, 50), 2),
        "livesight_p99": round(pct(lat_ls, 99), 2),
        "direct_p50": round(pct(lat_direct, 50), 2),
        "direct_p99": round(pct(lat_direct, 99), 2),
        "added_p50": round(pct(lat_ls, 50) - pct(lat_direct, 50), 2),
        "added_p99": round(pct(lat_ls, 99) - pct(lat_direct, 99), 2),
    }


def cases(ls: httpx.Client, warm: str, cold: str, n: int, rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    first, last = retained(ls, cold)
    # segments by offset from the oldest retained frame (CONTRACT 5.2), 10 s of stream time each, all retained
    starts = [rng.randint(0, max(0, retained_ms(ls, cold) - 12_000)) for _ in range(n)]
    frames = [rng.randint(first, last) for _ in range(n)]
    return {
        "frame_index=-1, warm stream": [image(warm, "frame_index=-1")] * n,
        "random retained frame, cold stream": [image(cold, f"frame_index={i}") for i in frames],
        "10 s segment at 1 fps, cold stream": [
            video(cold, f"start_offset_ms={s}&end_offset_ms={s + 10_000}&max_fps=1") for s in starts
        ],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=100, help="requests per case")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--fill-seconds", type=float, default=30, help="frames to collect before measuring")
    ap.add_argument("--codec", default="vp8", choices=("vp8", "h264"))
    ap.add_argument("--gop", type=int, default=60)
    ap.add_argument("--bitrate", type=int, default=2_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--serve-livesight", metavar="UPSTREAM", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_livesight:
        serve_livesight(args.serve_livesight)
        return
    if os.environ.get("LIVESIGHT_NETNS") != "1":
        sys.exit("run inside the network namespace: scripts/netns --run .venv/bin/python -m bench.query_store")
    spec = ClipSpec(args.codec, WIDTH, HEIGHT, FPS, args.bitrate, args.gop)
    load_or_encode(spec)
    fake, upstream = spawn([sys.executable, "-m", "tests.support.fake_upstream", "--no-validate"])
    ls_proc, info_line = spawn([sys.executable, "-m", "bench.query_store", "--serve-livesight", upstream])
    info = json.loads(info_line)
    work = Path(tempfile.mkdtemp(prefix="livesight-bench-"))
    publisher: subprocess.Popen[bytes] | None = None
    results: dict[str, Any] = {}
    try:
        headers = {"Authorization": f"Bearer {info['key']}"}
        with (
            httpx.Client(base_url=info["url"], headers=headers, timeout=60) as ls,
            httpx.Client(base_url=upstream.removesuffix("/v1"), timeout=30) as direct,
        ):
            streams = [ls.post("/v1/streams").json() for _ in range(2)]
            (work / "streams.json").write_text(json.dumps([s["publish"] for s in streams]))
            publisher = subprocess.Popen(
                [sys.executable, "-m", "bench.cheap_publisher", "--streams", str(work / "streams.json"),
                 "--out", str(work / "out.json"), "--stop-file", str(work / "stop"), "--seconds", "3600",
                 "--codec", args.codec, "--gop", str(args.gop), "--bitrate", str(args.bitrate)],
                cwd=ROOT,
            )  # fmt: skip
            warm, cold = streams[0]["id"], streams[1]["id"]
            deadline = time.monotonic() + args.fill_seconds * 3 + 60
            while min(retained(ls, s)[1] - retained(ls, s)[0] for s in (warm, cold)) < args.fill_seconds * FPS * 0.9:
                if time.monotonic() > deadline:
                    raise RuntimeError("the streams did not fill: is the publisher reaching the server?")
                time.sleep(1)
            for name, parts in cases(ls, warm, cold, args.requests, random.Random(args.seed)).items():
                results[name] = run_case(ls, direct, warm if "warm" in name else cold, parts, args.warmup)
    finally:
        (work / "stop").touch()
        if publisher is not None:
            publisher.wait(60)
        for proc in (ls_proc, fake):
            proc.terminate()
            proc.wait(10)
    print(f"{'case':38} {'added p50':>10} {'added p99':>10} {'ls p50':>9} {'ls p99':>9} {'direct':>8}")
    for name, r in results.items():
        print(
            f"{name:38} {r['added_p50']:8.2f}ms {r['added_p99']:8.2f}ms {r['livesight_p50']:7.2f}ms "
            f"{r['livesight_p99']:7.2f}ms {r['direct_p50']:6.2f}ms"
        )
    load = os.getloadavg()[0]
    print(json.dumps({"codec": args.codec, "gop": args.gop, "latency_ms": results, "load_avg_1m": round(load, 2)}))


if __name__ == "__main__":
    main()
