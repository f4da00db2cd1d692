"""`livesight publish SOURCE`: publish a video into a stream with the official LiveKit Python SDK.

Creates a stream (or uses `--stream-id`), keeps its Lease alive, prints progress, and deletes the
stream on Ctrl-C unless `--keep`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from typing import NoReturn

import httpx

from livesight.cli.common import command, fail
from livesight.core.errors import PublishError
from livesight.ingest.publisher import AVSource, PatternSource, PublishStats, Source, publish

DEFAULT_SERVER = "http://127.0.0.1:7880"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "publish",
        help="publish a video file, webcam, RTSP/HTTP URL or test pattern into a stream",
        description="Publish video into a livesight stream with the official LiveKit Python SDK.",
    )
    p.add_argument(
        "source",
        metavar="SOURCE",
        help="test-pattern | a video file | a webcam device (/dev/video0) | an rtsp:// or http(s):// URL",
    )
    p.add_argument(
        "--server", default=os.environ.get("LIVESIGHT_URL", DEFAULT_SERVER), help="livesight URL (env LIVESIGHT_URL)"
    )
    p.add_argument("--api-key", default=os.environ.get("LIVESIGHT_API_KEY"), help="API key (env LIVESIGHT_API_KEY)")
    p.add_argument("--stream-id", help="publish into this existing stream instead of creating one")
    p.add_argument("--keep", action="store_true", help="do not delete the stream on exit")
    p.add_argument("--loop", action="store_true", help="loop a video file")
    p.add_argument("--codec", choices=("vp8", "h264"), default="vp8", help="video codec (default vp8)")
    p.add_argument("--width", type=int, default=1280, help="test-pattern width (default 1280)")
    p.add_argument("--height", type=int, default=720, help="test-pattern height (default 720)")
    p.add_argument("--fps", type=float, default=30.0, help="test-pattern frame rate (default 30)")
    p.add_argument("--max-bitrate", type=int, default=4_000_000, help="encoder max bitrate in bps (default 4e6)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=run)


def make_source(args: argparse.Namespace) -> Source:
    if args.source == "test-pattern":
        if args.width % 2 or args.height % 2 or args.width < 160 or args.height < 90:
            fail("--width and --height must be even and at least 160x90")
        return PatternSource(args.width, args.height, args.fps)
    try:
        return AVSource(args.source, loop=args.loop)
    except PublishError as exc:
        fail(str(exc), code=1)


def _api_error(response: httpx.Response) -> str:
    try:
        detail: object = response.json().get("detail")
    except ValueError:
        detail = response.text[:200]
    return f"{response.request.method} {response.request.url.path}: HTTP {response.status_code}: {detail}"


def run(args: argparse.Namespace) -> int:
    if not args.api_key:
        fail(f"an API key is needed: --api-key or LIVESIGHT_API_KEY (see `{command('keys', 'create')}`)")
    source = make_source(args)
    try:
        code = asyncio.run(_run(args, source))
    except KeyboardInterrupt:
        code = 130
    _leave(code)


def _leave(code: int) -> NoReturn:
    """Exit without finalizing the interpreter. The livekit SDK's native (tokio) threads can still call
    back into Python after the room is disconnected; during interpreter finalization such a call aborts
    the process ("panic in a function that cannot unwind", exit -6, seen in tests/e2e/test_publish_cli.py
    after a clean publish). By now the room is disconnected and the stream kept or deleted, so nothing is
    left to clean up but our own output."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def _run(args: argparse.Namespace, source: Source) -> int:
    headers = {"Authorization": f"Bearer {args.api_key}"}
    async with httpx.AsyncClient(base_url=args.server.rstrip("/"), headers=headers, timeout=10) as http:
        try:
            if args.stream_id:
                response = await http.post(f"/v1/streams/{args.stream_id}/keepalive")
            else:
                response = await http.post("/v1/streams", json={})
        except httpx.HTTPError as exc:
            fail(f"cannot reach {args.server}: {exc}", code=1)
        if response.status_code not in (200, 201):
            fail(_api_error(response), code=1)
        body = response.json()
        stream_id, publish_info = body["id"], body.get("publish")
        if not publish_info:
            fail(f"stream {stream_id} takes no publisher (it pulls its own source)", code=1)
        print(f"stream_id {stream_id}\npublishing {source.description} as {args.codec.upper()}", file=sys.stderr)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        stats = PublishStats()
        helpers = [asyncio.create_task(keepalive_loop(http, stream_id, body["ttl_seconds"], stop))]
        if not args.quiet:
            helpers.append(asyncio.create_task(_progress(http, stream_id, stats, stop)))
        if args.duration:
            helpers.append(asyncio.create_task(_stop_after(args.duration, stop)))
        code = 0
        try:
            await publish(
                publish_info["url"],
                publish_info["token"],
                source,
                codec=args.codec,
                max_bitrate=args.max_bitrate,
                stats=stats,
                stop=stop,
            )
        except PublishError as exc:
            print(f"\nlivesight: error: {exc}", file=sys.stderr)
            code = 1
        finally:
            stop.set()
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            if not args.quiet:
                print(file=sys.stderr)
            if not args.keep:
                with contextlib.suppress(httpx.HTTPError):
                    await http.delete(f"/v1/streams/{stream_id}")
                print(f"deleted stream {stream_id}", file=sys.stderr)
        print(f"sent {stats.frames_sent} frames", file=sys.stderr)
        return code


async def _stop_after(seconds: float, stop: asyncio.Event) -> None:
    await asyncio.sleep(seconds)
    stop.set()


async def keepalive_loop(http: httpx.AsyncClient, stream_id: str, ttl_seconds: int, stop: asyncio.Event) -> None:
    interval = max(1.0, ttl_seconds / 3)
    while not stop.is_set():
        await asyncio.sleep(interval)
        with contextlib.suppress(httpx.HTTPError):
            response = await http.post(f"/v1/streams/{stream_id}/keepalive")
            if response.status_code == 404:
                print(f"\nlivesight: stream {stream_id} has ended", file=sys.stderr)
                stop.set()


async def _progress(http: httpx.AsyncClient, stream_id: str, stats: PublishStats, stop: asyncio.Event) -> None:
    started = time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(1.0)
        server = ""
        with contextlib.suppress(httpx.HTTPError, ValueError):
            status = (await http.get(f"/v1/streams/{stream_id}")).json()
            if status.get("last_frame_index") is not None:
                server = f" | server: frame {status['last_frame_index']} at {status.get('recent_fps', 0):.1f} fps"
            if status.get("last_error"):
                server += f" | error: {status['last_error']}"
        line = (
            f"\r{stream_id} | {time.monotonic() - started:6.0f} s | sent {stats.frames_sent} frames "
            f"at {stats.fps:4.1f} fps{server}"
        )
        print(line.ljust(110)[:200], end="", file=sys.stderr, flush=True)
