"""A resolved chat request as what an in-process model takes: chat turns for its template, the JPEG of each
`{"type": "image"}` part in order, and the sampling options. No torch here.

Media follow the `frames` engine profile (`render.py`), so a model hears about time the same way
whatever serves it: a segment is its intro (stream, frame count, first and last stream time), then per
frame a text part `t=+1.5s (stream time …, frame_index …)` and the image; a single `ovs://` frame is
preceded by its stream time. Inline `data:image/jpeg` images are read; any other inline media is
refused (this backend fetches nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

from livesight.backends.base import check_max_images
from livesight.backends.builtin import inline_item
from livesight.backends.render import frame_label, segment_intro
from livesight.backends.request import ChatRequest, MediaPart, PassPart, TextPart
from livesight.core.errors import RequestInvalid
from livesight.core.jsontypes import JsonObject
from livesight.core.media import MediaItem
from livesight.settings import ModelConfig

MAX_STOPS = 4

Turn = dict[str, object]  # {"role": ..., "content": [{"type": "text", "text": ...} | {"type": "image"}]}


@dataclass(frozen=True, slots=True)
class Prompt:
    turns: list[Turn]
    images: list[bytes]  # JPEG, one per image part, in order


@dataclass(frozen=True, slots=True)
class Sampling:
    """How to pick tokens. `temperature` None or 0 is greedy (deterministic); `seed` makes sampling repeatable."""

    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    response_format: object = None


@dataclass(frozen=True, slots=True)
class Generated:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"


def build_prompt(config: ModelConfig, request: ChatRequest) -> Prompt:
    turns: list[Turn] = []
    images: list[bytes] = []
    for message in request.messages:
        parts: list[JsonObject] = []
        if isinstance(message.content, str):
            parts.append({"type": "text", "text": message.content})
        for part in message.parts:
            if isinstance(part, TextPart):
                parts.append({"type": "text", "text": part.text})
            elif isinstance(part, MediaPart):
                parts.extend(_media(part.item, images))
            elif isinstance(part, PassPart) and part.url is not None:
                parts.extend(_media(inline_item(config.id, part), images))
            else:
                raise RequestInvalid(f"model {config.id} reads text and image parts, not {part.kind}")
        turns.append({"role": message.role, "content": parts})
    check_max_images(config, len(images))
    return Prompt(turns, images)


def _media(item: MediaItem, images: list[bytes]) -> list[JsonObject]:
    parts: list[JsonObject] = []
    if item.kind == "video":
        parts.append({"type": "text", "text": segment_intro(item)})
        start = item.frames[0].timestamp_ms or 0
        for frame in item.frames:
            parts.append({"type": "text", "text": frame_label(frame, start)})
            parts.append({"type": "image"})
            images.append(frame.jpeg)
        return parts
    frame = item.frames[0]
    if frame.timestamp_ms is not None:
        parts.append(
            {"type": "text", "text": f"Frame of stream {item.stream_id} {frame_label(frame, frame.timestamp_ms)}"}
        )
    parts.append({"type": "image"})
    images.append(frame.jpeg)
    return parts


def sampling_of(config: ModelConfig, params: JsonObject) -> Sampling:
    """The sampling options of a request's parameters; 400 for what this backend cannot do."""
    model = config.id
    n = params.get("n")
    if n not in (None, 1):
        raise RequestInvalid(f"model {model} answers one choice per request (n: 1)")
    choice = params.get("tool_choice")
    if choice == "required" or isinstance(choice, dict):
        raise RequestInvalid(f"model {model} cannot call tools; it answers in text (tool_choice: auto or none)")
    limit = params.get("max_completion_tokens", params.get("max_tokens"))
    if limit is None:
        limit = config.default_max_tokens
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise RequestInvalid(f"model {model}: max_tokens must be a positive integer")
    stop = params.get("stop")
    stops = (stop,) if isinstance(stop, str) else tuple(stop) if isinstance(stop, list) else ()
    if stop is not None and (not all(isinstance(s, str) and s for s in stops) or len(stops) > MAX_STOPS):
        raise RequestInvalid(f"model {model}: stop is a string or a list of at most {MAX_STOPS} non-empty strings")
    return Sampling(
        max_tokens=min(limit, config.max_output_tokens),
        temperature=_number(model, params, "temperature", 0, 2),
        top_p=_number(model, params, "top_p", 0, 1),
        seed=_seed(model, params.get("seed")),
        stop=tuple(s for s in stops if isinstance(s, str)),
        response_format=params.get("response_format"),
    )


def _number(model: str, params: JsonObject, name: str, low: float, high: float) -> float | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise RequestInvalid(f"model {model}: {name} must be a number from {low} to {high}")
    return float(value)


def _seed(model: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestInvalid(f"model {model}: seed must be an integer")
    return value % (2**63)
