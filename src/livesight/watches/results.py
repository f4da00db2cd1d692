"""A watch result, built from a tick's completion or error (the shape docs/watches.md describes).

Results are `TypedDict`s: plain dicts at run time (kept in a deque, stored and sent as JSON as they are),
typed for the code that builds and reads them; `RESULT` validates one read back from the store.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable

from pydantic import TypeAdapter
from typing_extensions import TypedDict

from livesight.core.errors import LivesightError
from livesight.core.jsontypes import JsonObject, JsonValue


class ResultError(TypedDict):
    code: str
    message: str


class WatchResult(TypedDict):
    seq: int | None  # set when the result is recorded
    watch_id: str
    at_ms: int
    frames: list[JsonObject]  # the completion's overshoot.frames
    output: str
    data: JsonValue
    matched: bool | None
    timing: dict[str, float | None]
    error: ResultError | None


RESULT: TypeAdapter[WatchResult] = TypeAdapter(WatchResult)
Matcher = Callable[[str, JsonValue], bool]  # a trigger's test: (output, parsed data) -> matched


def build_result(
    watch_id: str,
    wants_json: bool,
    matches: Matcher | None,
    at_ms: int,
    completion: JsonObject | None,
    error: LivesightError | None,
    ticked: float,
    waited_ms: float,
) -> WatchResult:
    """`wants_json`: the request asked for a JSON answer (it is parsed into `data`); `matches` is the
    trigger's test, if the watch has one."""
    output = ""
    data: JsonValue = None
    matched: bool | None = None
    frames: list[JsonObject] = []
    timing: dict[str, float | None] = {}
    if completion is not None:
        output = _output(completion)
        overshoot = completion.get("overshoot")
        if isinstance(overshoot, dict):
            given = overshoot.get("frames")
            frames = [f for f in given if isinstance(f, dict)] if isinstance(given, list) else []
            spent = overshoot.get("timing")
            if isinstance(spent, dict):
                timing = {k: float(v) if isinstance(v, int | float) else None for k, v in spent.items()}
        if wants_json:
            with contextlib.suppress(ValueError):
                data = json.loads(output)
        matched = matches(output, data) if matches is not None else None
    timing["gate_wait_ms"] = round(waited_ms, 3)
    timing["tick_to_result_ms"] = round((time.perf_counter() - ticked) * 1000, 3)
    return {
        "seq": None,
        "watch_id": watch_id,
        "at_ms": at_ms,
        "frames": frames,
        "output": output,
        "data": data,
        "matched": matched,
        "timing": timing,
        "error": {"code": error.code_for_envelope(), "message": error.message} if error else None,
    }


def _output(completion: JsonObject) -> str:
    choices = completion.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            return content
    return ""
