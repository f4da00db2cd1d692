"""`livesight ask STREAM_ID "question"`: ask a model about a stream, with the official openai SDK.

By default it asks about the newest frame (`image_url` `frame_index=-1`); `--segment -5000` asks
about the last 5 s instead (`video_url` `start_offset_ms=-5000`, sampled at `--fps`). The answer is
streamed as it arrives, then the frames the model saw are listed (from `overshoot.frames`).
`--system`, `--temperature`, `--max-tokens`, `--top-p` and `--seed` become the OpenAI request's system
message and sampling fields; left out, they are not sent (the model's defaults apply). Out-of-range values
are refused by argparse before anything is sent. `ask()` is the reusable part (the demo uses it).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

import openai

from livesight.cli.common import command, fail
from livesight.core.jsontypes import JsonObject, JsonValue

DEFAULT_URL = "http://127.0.0.1:7880"
DEFAULT_MODEL = "livesight/ocr"


class SamplingFields(TypedDict, total=False):
    """The optional sampling arguments of `chat.completions.create`, as the OpenAI API names them."""

    temperature: float
    max_tokens: int
    top_p: float
    seed: int


@dataclass(frozen=True)
class Options:
    """Optional request fields; None means "not sent"."""

    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None

    def fields(self) -> SamplingFields:
        """The sampling fields to send (those that are not None)."""
        fields: SamplingFields = {}
        if self.temperature is not None:
            fields["temperature"] = self.temperature
        if self.max_tokens is not None:
            fields["max_tokens"] = self.max_tokens
        if self.top_p is not None:
            fields["top_p"] = self.top_p
        if self.seed is not None:
            fields["seed"] = self.seed
        return fields


@dataclass
class Answer:
    text: str
    frames: list[JsonObject] = field(default_factory=list)  # overshoot.frames
    timing: JsonObject = field(default_factory=dict)  # overshoot.timing
    usage: JsonObject | None = None


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
    options: Options | None = None,
) -> Answer:
    """Ask about the newest frame (or a frame_index), or about a segment starting `segment_ms` ago."""
    options = options or Options()
    url = media_url(stream_id, segment_ms=segment_ms, fps=fps, frame_index=frame_index)
    kind = "image_url" if segment_ms is None else "video_url"
    part: JsonObject = {"type": kind, kind: {"url": url}}
    # Not the SDK's ChatCompletionMessageParam: its content-part union has no `video_url` part.
    messages: Any = [{"role": "user", "content": [part, {"type": "text", "text": question}]}]
    if options.system is not None:
        messages.insert(0, {"role": "system", "content": options.system})
    stream = client.chat.completions.create(
        model=model,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
        **options.fields(),
    )
    answer = Answer(text="")
    pieces: list[str] = []
    for chunk in stream:
        for choice in chunk.choices:
            if choice.index == 0 and choice.delta.content:
                pieces.append(choice.delta.content)
                if on_text is not None:
                    on_text(choice.delta.content)
        overshoot = (chunk.model_extra or {}).get("overshoot")
        if isinstance(overshoot, dict):
            answer.frames = [used for used in overshoot.get("frames") or [] if isinstance(used, dict)]
            answer.timing = dict(overshoot.get("timing") or {})
        if chunk.usage is not None:
            answer.usage = chunk.usage.model_dump()
    answer.text = "".join(pieces)
    return answer


def describe_frames(frames: list[JsonObject]) -> str:
    lines = []
    for used in frames:
        indexes, stamps = _items(used.get("frame_indexes")), _items(used.get("timestamps_ms"))
        if len(indexes) == 1:
            lines.append(f"frame {indexes[0]} (stream time {_seconds(stamps, 0)} s)")
        elif indexes:
            lines.append(
                f"{len(indexes)} frames {indexes[0]}..{indexes[-1]} "
                f"(stream time {_seconds(stamps, 0)}..{_seconds(stamps, -1)} s): {', '.join(map(str, indexes))}"
            )
    return "; ".join(lines) or "none"


def _items(value: JsonValue) -> list[JsonValue]:
    return value if isinstance(value, list) else []


def _seconds(stamps_ms: list[JsonValue], at: int) -> str:
    """`stamps_ms[at]` in seconds with 3 decimals (`?` where the server sent no number there)."""
    stamp = stamps_ms[at] if stamps_ms else None
    return f"{stamp / 1000:.3f}" if isinstance(stamp, int | float) and not isinstance(stamp, bool) else "?"


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
    p.add_argument("--system", metavar="TEXT", help="a system prompt, sent as the first message (default: none)")
    p.add_argument(
        "--temperature",
        type=_number("--temperature", 0, 2),
        metavar="T",
        help="sampling temperature, 0 to 2 (default: the model's)",
    )
    p.add_argument(
        "--max-tokens",
        type=_integer("--max-tokens", 1),
        metavar="N",
        help="most tokens to generate (default: the model's)",
    )
    p.add_argument(
        "--top-p", type=_number("--top-p", 0, 1, low_open=True), metavar="P", help="nucleus sampling, (0, 1]"
    )
    p.add_argument(
        "--seed", type=_integer("--seed", None), metavar="N", help="sampling seed, where the model supports it"
    )
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
            options=Options(args.system, args.temperature, args.max_tokens, args.top_p, args.seed),
        )
    except openai.APIStatusError as exc:
        fail(f"{exc.status_code} {_error_text(exc)}", code=1)
    except openai.APIError as exc:  # includes an error event inside the stream
        fail(_error_text(exc), code=1)
    print()
    print(f"\nframes used: {describe_frames(answer.frames)}", file=sys.stderr)
    return 0


def _number(flag: str, low: float, high: float, *, low_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in [low, high] (or (low, high]); a clear message otherwise."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; {flag} takes a number in {interval}") from None
        if not (low < value if low_open else low <= value) or not value <= high:
            raise argparse.ArgumentTypeError(f"{text} is out of range; {flag} takes a number in {interval}")
        return value

    return parse


def _integer(flag: str, low: int | None) -> Callable[[str], int]:
    """An argparse type: a whole number, at least `low` if given; a clear message otherwise."""
    bound = f" of at least {low}" if low is not None else ""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a whole number; {flag} takes a whole number{bound}"
            ) from None
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"{text} is too small; {flag} takes a whole number{bound}")
        return value

    return parse


def _error_text(exc: openai.APIError) -> str:
    body = exc.body
    if isinstance(body, dict):
        detail = body.get("detail")
        error = detail.get("error") if isinstance(detail, dict) else body
        if isinstance(error, dict) and error.get("message"):
            return f"{error.get('code', '')}: {error['message']}".strip(": ")
    if isinstance(exc, openai.APIConnectionError):
        return f"cannot reach livesight ({exc.message}); is `{command('serve')}` running?"
    return exc.message
