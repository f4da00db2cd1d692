"""Latency livesight adds to a chat request, and its throughput, against a zero-latency fake upstream.

    .venv/bin/python bench/query.py [--requests 300] [--throughput-requests 3000] [--concurrency 32]

One run starts three processes on loopback: a fake vLLM that answers at once without decoding media
(`tests/support/fake_upstream.py --no-validate`), a livesight server holding one stream with 70 s of
640x360 JPEG frames at 30 fps, and this load generator. For each scenario it sends the same request
through livesight (an `ovs://` reference) and directly to the fake (the same frames inlined, rendered
exactly as livesight renders them for the `vllm` profile), alternating, one at a time over keep-alive
connections; the added latency is livesight's percentile minus the direct one. Throughput is
`frame_index=-1` at the given concurrency. Scenarios: `frame_index=-1`; a 5 s segment at 1 fps; a 60 s
segment at 2 fps.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
MODEL = "Qwen/Qwen3-VL-8B-Instruct"
FPS, SECONDS = 30, 70


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def scene(i: int) -> bytes:
    """A 640x360 camera-like frame (gradient background, a moving box, a clock), JPEG quality 80."""
    import numpy as np
    import simplejpeg
    from PIL import Image, ImageDraw, ImageFont

    y, x = np.mgrid[0:360, 0:640]
    base = np.stack([(x // 3) % 256, (y // 2 + 60) % 256, ((x + y) // 5) % 256], axis=-1).astype(np.uint8)
    image = Image.fromarray(base)
    draw = ImageDraw.Draw(image)
    draw.rectangle((40 + i * 15, 200, 140 + i * 15, 300), fill=(200, 40, 40))
    draw.text((20, 20), f"CAM 03  21:50:{i:02d}", fill=(255, 255, 255), font=ImageFont.load_default(size=28))
    return bytes(simplejpeg.encode_jpeg(np.asarray(image), quality=80, colorspace="RGB"))


# --- the livesight process --------------------------------------------------------------------------


def serve_livesight(upstream: str) -> None:
    import uvicorn

    from livesight.api.app import create_app
    from livesight.core.frame import IngestFrame, JpegPayload
    from livesight.settings import ModelConfig, load_settings
    from livesight.store.keys import SQLiteKeyStore

    data = tempfile.mkdtemp(prefix="livesight-bench-")
    model = ModelConfig(id="bench", base_url=upstream, upstream_model=MODEL, profile="vllm", max_frames=256)
    settings = load_settings(
        None, data_dir=Path(data), port=0, models=[model], builtin_models=[], log_level="warning", log_format="text"
    )
    keys = SQLiteKeyStore(Path(data) / "keys.db")
    app = create_app(settings, keys=keys)
    key = keys.create("bench")[1]
    registry = app.components.registry
    stream = registry.create(keys.list()[0].owner)
    jpegs = [scene(i) for i in range(FPS)]  # 30 distinct frames, cycled: realistic sizes, quick to make
    target = registry.ingest_target(stream.id)
    assert target is not None
    for i in range(FPS * SECONDS):
        target.push_frame(IngestFrame("bench", i * 1000 / FPS, 640, 360, JpegPayload(jpegs[i % FPS])))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)

    async def run() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for this)
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        print(json.dumps({"url": f"http://127.0.0.1:{port}", "key": key, "stream_id": stream.id}), flush=True)
        await task

    asyncio.run(run())


# --- the load generator ------------------------------------------------------------------------------


def spawn(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    # this checkout's src first: the venv's editable install may point at another checkout
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line:
        proc.kill()
        raise RuntimeError(f"{args} did not start")
    return proc, line


def scenarios(stream_id: str) -> dict[str, dict[str, Any]]:
    def part(kind: str, query: str) -> dict[str, Any]:
        return {"type": kind, kind: {"url": f"ovs://streams/{stream_id}?{query}"}}

    return {
        "frame_index=-1": part("image_url", "frame_index=-1"),
        "5 s segment at 1 fps": part("video_url", "start_offset_ms=-5000&max_fps=1"),
        "60 s segment at 2 fps": part("video_url", "start_offset_ms=-60000&max_fps=2"),
    }


def body_for(part: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": "bench",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": [part, {"type": "text", "text": "What happens?"}]}],
    }


def direct_body(
    ls: httpx.Client, stream_id: str, part: dict[str, Any], size: tuple[int, int] = (640, 360)
) -> dict[str, Any]:
    """The request livesight would send upstream for `part`, built from the frames it resolves now."""
    from livesight.backends.body import encode_body
    from livesight.backends.render import Renderer
    from livesight.backends.request import MediaPart, Message, TextPart
    from livesight.core.media import MediaFrame, MediaItem

    answer = ls.post("/v1/chat/completions", json=body_for(part)).json()
    used = answer["overshoot"]["frames"][0]
    frames = tuple(
        MediaFrame(ls.get(f"/v1/streams/{stream_id}/frames/{i}").content, *size, i, t)
        for i, t in zip(used["frame_indexes"], used["timestamps_ms"], strict=True)
    )
    kind = "image" if part["type"] == "image_url" else "video"
    item = MediaItem(
        kind, used["url"], frames, stream_id, 1.0 if "max_fps=1" in used["url"] else 2.0 if kind == "video" else None
    )
    rendered = asyncio.run(Renderer("vllm").render([Message("user", (MediaPart(item), TextPart("What happens?")))]))
    body = {"model": MODEL, "max_tokens": 16, "messages": rendered.messages, **rendered.extra}
    parsed: dict[str, Any] = json.loads(encode_body(body).join())
    return parsed


def measure(client: httpx.Client, path: str, content: bytes, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.post(path, content=content, headers={"content-type": "application/json"})
        out.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text[:300]
    return out


async def throughput(url: str, path: str, headers: dict[str, str], content: bytes, n: int, concurrency: int) -> float:
    """Requests/s with `concurrency` requests in flight. Each worker has its own client: one shared httpx
    pool of 32 connections costs the load generator more CPU than the servers it measures."""
    clients = [httpx.AsyncClient(base_url=url, headers=headers, timeout=30) for _ in range(concurrency)]
    try:
        queue = iter(range(n))
        json_header = {"content-type": "application/json"}

        async def worker(c: httpx.AsyncClient) -> None:
            for _ in queue:
                r = await c.post(path, content=content, headers=json_header)
                assert r.status_code == 200, r.text[:300]

        await asyncio.gather(*(c.post(path, content=content, headers=json_header) for c in clients))  # warm up
        started = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in clients))
        return n / (time.perf_counter() - started)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300, help="sequential requests per scenario and path")
    ap.add_argument("--throughput-requests", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--serve-livesight", metavar="UPSTREAM", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_livesight:
        serve_livesight(args.serve_livesight)
        return
    fake, upstream = spawn([sys.executable, "-m", "tests.support.fake_upstream", "--no-validate"])
    ls_proc, info_line = spawn([sys.executable, str(Path(__file__).resolve()), "--serve-livesight", upstream])
    info = json.loads(info_line)
    headers = {"Authorization": f"Bearer {info['key']}"}
    results: dict[str, Any] = {}
    try:
        with (
            httpx.Client(base_url=info["url"], headers=headers, timeout=30) as ls,
            httpx.Client(base_url=upstream.removesuffix("/v1"), timeout=30) as direct,
        ):
            for name, part in scenarios(info["stream_id"]).items():
                via = json.dumps(body_for(part)).encode()
                inline = json.dumps(direct_body(ls, info["stream_id"], part)).encode()
                measure(ls, "/v1/chat/completions", via, 20)  # warm-up
                measure(direct, "/v1/chat/completions", inline, 20)
                lat_ls: list[float] = []
                lat_direct: list[float] = []
                for _ in range(args.requests // 10):  # alternate in blocks so drift hits both paths alike
                    lat_ls += measure(ls, "/v1/chat/completions", via, 10)
                    lat_direct += measure(direct, "/v1/chat/completions", inline, 10)
                results[name] = {
                    "frames": len(json.loads(inline)["messages"][0]["content"]),
                    "request_kib_direct": round(len(inline) / 1024, 1),
                    "livesight_p50": pct(lat_ls, 50),
                    "livesight_p99": pct(lat_ls, 99),
                    "direct_p50": pct(lat_direct, 50),
                    "direct_p99": pct(lat_direct, 99),
                    "added_p50": pct(lat_ls, 50) - pct(lat_direct, 50),
                    "added_p99": pct(lat_ls, 99) - pct(lat_direct, 99),
                }
            one = scenarios(info["stream_id"])["frame_index=-1"]
            cpu_before = cpu_seconds(ls_proc.pid)
            rps_ls = asyncio.run(
                throughput(
                    info["url"],
                    "/v1/chat/completions",
                    headers,
                    json.dumps(body_for(one)).encode(),
                    args.throughput_requests,
                    args.concurrency,
                )
            )
            # livesight's own CPU per request (the warm-up requests included): its capacity on one core
            cpu_ms = (cpu_seconds(ls_proc.pid) - cpu_before) * 1000 / (args.throughput_requests + args.concurrency)
            inline_one = json.dumps(direct_body(ls, info["stream_id"], one)).encode()
            rps_direct = asyncio.run(
                throughput(
                    upstream.removesuffix("/v1"),
                    "/v1/chat/completions",
                    {},
                    inline_one,
                    args.throughput_requests,
                    args.concurrency,
                )
            )
    finally:
        for proc in (ls_proc, fake):
            proc.terminate()
            proc.wait(10)
    print(f"{'scenario':24} {'added p50':>10} {'added p99':>10} {'ls p50':>8} {'ls p99':>8} {'direct':>8} {'p99':>8}")
    for name, r in results.items():
        print(
            f"{name:24} {r['added_p50']:8.2f}ms {r['added_p99']:8.2f}ms {r['livesight_p50']:6.2f}ms "
            f"{r['livesight_p99']:6.2f}ms {r['direct_p50']:6.2f}ms {r['direct_p99']:6.2f}ms"
        )
    rates = f"livesight {rps_ls:.0f} req/s, direct {rps_direct:.0f} req/s"
    print(f"throughput, frame_index=-1, concurrency {args.concurrency}: {rates}")
    print(f"livesight CPU per request at that load: {cpu_ms:.2f} ms (one core: {1000 / cpu_ms:.0f} req/s)")
    print(
        json.dumps(
            {
                "latency_ms": results,
                "throughput_rps": {"livesight": rps_ls, "direct": rps_direct},
                "livesight_cpu_ms_per_request": cpu_ms,
            }
        )
    )


if __name__ == "__main__":
    main()
