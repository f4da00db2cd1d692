"""`livesight ask STREAM_ID "question"`: ask a model about a stream, with the official openai SDK.

By default it asks about the newest frame (`image_url` `frame_index=-1`); `--segment -5000` asks
about the last 5 s instead (`video_url` `start_offset_ms=-5000`, sampled at `--fps`). The answer is
streamed as it arrives, then the frames the model saw are listed (from `overshoot.frames`).
`ask()` is the reusable part (the demo uses it).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import openai

from livesight.cli.common import command, fail

DEFAULT_URL = "http://127.0.0.1:7880"
DEFAULT_MODEL = "livesight/ocr"


@dataclass
class Answer:
    text: str
    frames: list[dict[str, Any]] = field(default_factory=list)  # overshoot.frames
    timing: dict[str, Any] = field(default_factory=dict)  # overshoot.timing
    usage: dict[str, Any] | None = None


def media_url(stream_id: str, *, segment_ms: int | None = None, fps: float = 1.0, frame_index: int = -1) -> str:
    if segment_ms is None:
        return f"ovs://streams/{stream_id}?frame_index={frame_index}"
    return f"ovs://streams/{stream_id}?start_offset_ms={segment_ms}&max_fps={fps:g}"


def ask(
    client: openai.OpenAI,
    stream_id: str,
    question: str,
    *,
    model: str = DEFAULT_MODEL,
    segment_ms: int | None = None,
    fps: float = 1.0,
    frame_index: int = -1,
    on_text: Callable[[str], None] | None = None,
) -> Answer:
    """Ask about the newest frame (or a frame_index), or about a segment starting `segment_ms` ago."""
    url = media_url(stream_id, segment_ms=segment_ms, fps=fps, frame_index=frame_index)
    kind = "image_url" if segment_ms is None else "video_url"
    part: dict[str, Any] = {"type": kind, kind: {"url": url}}
    messages: Any = [{"role": "user", "content": [part, {"type": "text", "text": question}]}]
    stream = client.chat.completions.create(
        model=model,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    )
    answer = Answer(text="")
    pieces: list[str] = []
    for chunk in stream:
        for choice in chunk.choices:
            if choice.index == 0 and choice.delta.content:
                pieces.append(choice.delta.content)
                if on_text is not None:
                    on_text(choice.delta.content)
        extra = chunk.model_extra or {}
        if isinstance(extra.get("overshoot"), dict):
            answer.frames = list(extra["overshoot"].get("frames") or [])
            answer.timing = dict(extra["overshoot"].get("timing") or {})
        if chunk.usage is not None:
            answer.usage = chunk.usage.model_dump()
    answer.text = "".join(pieces)
    return answer


def describe_frames(frames: list[dict[str, Any]]) -> str:
    lines = []
    for used in frames:
        indexes, stamps = used.get("frame_indexes") or [], used.get("timestamps_ms") or []
        if len(indexes) == 1:
            lines.append(f"frame {indexes[0]} (stream time {stamps[0] / 1000:.3f} s)")
        elif indexes:
            lines.append(
                f"{len(indexes)} frames {indexes[0]}..{indexes[-1]} "
                f"(stream time {stamps[0] / 1000:.3f}..{stamps[-1] / 1000:.3f} s): {', '.join(map(str, indexes))}"
            )
    return "; ".join(lines) or "none"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "ask",
        help="ask a model about a stream's newest frame or last seconds",
        description="Ask a model about a stream (through livesight's OpenAI-compatible API).",
    )
    p.add_argument("stream_id", help="the stream_id (from POST /v1/streams)")
    p.add_argument("question", help="what to ask")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model id (default {DEFAULT_MODEL}; see GET /v1/models)")
    p.add_argument("--segment", type=int, metavar="MS", help="ask about a segment from MS ms ago (e.g. -5000)")
    p.add_argument("--fps", type=float, default=1.0, help="sampling rate of --segment (default 1)")
    p.add_argument("--frame", type=int, default=-1, help="frame_index to ask about without --segment (default -1)")
    p.add_argument("--server", default=None, help=f"livesight URL (default $LIVESIGHT_URL or {DEFAULT_URL})")
    p.add_argument("--api-key", default=None, help="API key (default $LIVESIGHT_API_KEY)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    server = (args.server or os.environ.get("LIVESIGHT_URL") or DEFAULT_URL).rstrip("/")
    key = args.api_key or os.environ.get("LIVESIGHT_API_KEY")
    if not key:
        fail(f"no API key: pass --api-key or set LIVESIGHT_API_KEY (see `{command('keys', 'create')}`)")
    if args.segment is not None and args.segment >= 0:
        fail("--segment counts back from now: give a negative number of ms, e.g. --segment -5000")
    base = server if server.endswith("/v1") else server + "/v1"
    client = openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=300)
    try:
        answer = ask(
            client,
            args.stream_id,
            args.question,
            model=args.model,
            segment_ms=args.segment,
            fps=args.fps,
            frame_index=args.frame,
            on_text=lambda text: print(text, end="", flush=True),
        )
    except openai.APIStatusError as exc:
        fail(f"{exc.status_code} {_error_text(exc)}", code=1)
    except openai.APIError as exc:  # includes an error event inside the stream
        fail(_error_text(exc), code=1)
    print()
    print(f"\nframes used: {describe_frames(answer.frames)}", file=sys.stderr)
    return 0


def _error_text(exc: openai.APIError) -> str:
    body: Any = exc.body
    if isinstance(body, dict):
        error = (body.get("detail") or {}).get("error") if isinstance(body.get("detail"), dict) else body
        if isinstance(error, dict) and error.get("message"):
            return f"{error.get('code', '')}: {error['message']}".strip(": ")
    if isinstance(exc, openai.APIConnectionError):
        return f"cannot reach livesight ({exc.message}); is `{command('serve')}` running?"
    return exc.message
