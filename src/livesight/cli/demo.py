"""`livesight demo`: the whole product, offline, in one command.

It starts the server (in this process), creates an API key and a stream, publishes a generated clip
(a sign, a clock, moving objects) through the official LiveKit SDK, asks the offline model
`livesight/ocr` about the newest frame and about the last 5 s through the official `openai` SDK,
prints the answers with the frames used, and keeps everything running for the playground and for
`livesight ask` until Ctrl-C (or exits at once with `--once`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import TypedDict

import httpx
import openai
import uvicorn

from livesight.api.app import create_app
from livesight.api.server import server_config
from livesight.cli.ask import ask, describe_frames
from livesight.cli.common import add_config_argument, bind_listener, command, fail, local_base_url, settings_from
from livesight.cli.publish import keepalive_loop
from livesight.core.errors import PublishError
from livesight.core.logs import configure
from livesight.ingest.clip import DEFAULT_SIGN, DemoClip
from livesight.ingest.publisher import PublishStats, publish
from livesight.settings import Settings
from livesight.store.keys import ApiKey, SQLiteKeyStore

QUESTIONS = (
    ("the newest frame", None, "What does the sign say, and what time does the clock show?"),
    ("the last 5 seconds", -5000, "What changed in the last 5 seconds?"),
)
SEGMENT_FPS = 2.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="start a server, publish a generated clip and ask the offline model about it",
        description="The main job offline in one command: serve, publish a clip, ask livesight/ocr about it.",
    )
    p.add_argument("--host", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 7880; 0 picks a free one)")
    p.add_argument("--sign", default=DEFAULT_SIGN, help=f"text on the sign in the clip (default {DEFAULT_SIGN!r})")
    p.add_argument("--once", action="store_true", help="exit after the answers instead of keeping everything running")
    p.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for the first 6 s of video (90)")
    add_config_argument(p)
    p.set_defaults(func=run)


def say(text: str = "") -> None:
    print(text, flush=True)


DEMO_KEY_FILE = "demo.key"


def demo_key(store: SQLiteKeyStore, data_dir: Path) -> tuple[ApiKey, str, bool]:
    """The demo's one API key: the one kept (plain, mode 0600) in <data_dir>/demo.key while the store still
    has it active, else a new one (marked demo, so `serve`'s first-key banner still appears).
    Returns (record, plain key, reused)."""
    path = data_dir / DEMO_KEY_FILE
    with contextlib.suppress(OSError, UnicodeDecodeError):
        plain = path.read_text().strip()
        record = store.verify(plain)
        if record is not None:
            return record, plain, True
    record, plain = store.create("demo", demo=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)  # an older file may have had other bits
        out.write(plain + "\n")
    return record, plain, False


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args, host=args.host, port=args.port)
    configure("warning", fmt="text")
    logging.getLogger("livesight.backends").setLevel(logging.ERROR)
    return asyncio.run(_demo(args, settings))


async def _demo(args: argparse.Namespace, settings: Settings) -> int:
    listener = bind_listener(settings.host, settings.port, settings.http_backlog)
    settings = settings.model_copy(update={"port": listener.getsockname()[1]})
    store = SQLiteKeyStore(settings.resolved_db_path)
    key_record, key, reused = demo_key(store, settings.data_dir)
    app = create_app(settings, keys=store)
    server = uvicorn.Server(server_config(app, settings))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        if serving.done():
            store.close()
            fail(f"the server could not start on {settings.host}:{settings.port}", 1)
        await asyncio.sleep(0.02)
    base = local_base_url(settings.host, settings.port)
    say(f"livesight demo: server running at {base}")
    where = settings.data_dir / DEMO_KEY_FILE
    say(f"  {'using the' if reused else 'created a'} demo API key {key_record.id} (kept in {where}): {key}")
    stop = asyncio.Event()
    tasks: list[asyncio.Task[object]] = []
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10) as http:
        stream_id = ""
        try:
            created = (await http.post("/v1/streams", json={})).json()
            stream_id = created["id"]
            clip = DemoClip(sign=args.sign)
            say(f"  created stream {stream_id}; publishing {clip.description} with the LiveKit SDK")
            publish_info = created["publish"]
            publishing = asyncio.create_task(publish(publish_info["url"], publish_info["token"], clip, stop=stop))
            tasks = [publishing, asyncio.create_task(keepalive_loop(http, stream_id, created["ttl_seconds"], stop))]
            status = await _wait_for_video(http, stream_id, publishing, args.timeout)
            say(
                f"  receiving {status['width']}x{status['height']} at {status['recent_fps']:g} fps; "
                f"{status['retained_frame_count']} frames buffered"
            )
            code = await _ask_questions(base, key, stream_id)
            if code == 0 and not args.once:
                say()
                say(f"Everything keeps running. Open the playground: {base}/")
                say("Ask your own questions (in another terminal):")
                say(f"  export LIVESIGHT_URL={base} LIVESIGHT_API_KEY={key}")
                say(f"  {command('ask', stream_id, 'What does the sign say?')}")
                say(f"  {command('ask', stream_id, 'What happened?', '--segment', '-10000', '--fps', '1')}")
                say("Ctrl-C stops the demo.")
                await serving
            return code
        finally:
            stop.set()
            for task in tasks[1:]:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if stream_id and not serving.done():
                with contextlib.suppress(httpx.HTTPError):
                    await http.delete(f"/v1/streams/{stream_id}")
            server.should_exit = True
            with contextlib.suppress(Exception):
                await serving
            listener.close()
            store.close()


async def _ask_questions(base: str, key: str, stream_id: str) -> int:
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=300)
    for what, segment_ms, question in QUESTIONS:
        say()
        say(f"Q ({what}, livesight/ocr): {question}")
        started = time.monotonic()
        try:
            answer = await asyncio.to_thread(ask, client, stream_id, question, segment_ms=segment_ms, fps=SEGMENT_FPS)
        except openai.APIError as exc:
            say(f"livesight: error: {exc.message}")
            return 1
        say(f"A: {answer.text}")
        say(f"   frames used: {describe_frames(answer.frames)} ({time.monotonic() - started:.1f} s)")
    return 0


class _Status(TypedDict):
    """The fields of GET /v1/streams/{id} (`api.schemas.StreamStatus`) the demo reads."""

    stream_time_ms: int
    last_frame_index: int | None
    recent_fps: float
    retained_frame_count: int
    width: int | None
    height: int | None
    last_error: str | None


async def _wait_for_video(
    http: httpx.AsyncClient, stream_id: str, publishing: asyncio.Task[PublishStats], wait_s: float
) -> _Status:
    """Until the stream holds 6 s of video (the last-5-s question needs it); explain any failure."""
    deadline = time.monotonic() + wait_s
    while True:
        status: _Status = (await http.get(f"/v1/streams/{stream_id}")).json()
        if status["stream_time_ms"] >= 6_000:
            return status
        if publishing.done():
            exc = publishing.exception()
            reason = str(exc) if isinstance(exc, PublishError) else repr(exc)
            fail(f"publishing stopped: {reason}{_network_hint()}", 1)
        if time.monotonic() > deadline:
            detail = status.get("last_error") or "no frames arrived"
            fail(f"no video after {wait_s:g} s ({detail}){_network_hint()}", 1)
        frames = status.get("last_frame_index")
        print(
            f"\r  waiting for video: {0 if frames is None else frames + 1} frames", end="", file=sys.stderr, flush=True
        )
        await asyncio.sleep(0.25)


def _network_hint() -> str:
    return (
        "\n  WebRTC needs a non-loopback network interface (LiveKit clients ignore 127.0.0.1): "
        "check that this machine has one (e.g. `ip addr`)."
    )
