"""A watch result, built from a tick's completion or error (the shape docs/watches.md describes)."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from livesight.core.errors import LivesightError
from livesight.watches.model import Watch


def build_result(
    watch: Watch,
    at_ms: int,
    completion: dict[str, Any] | None,
    error: LivesightError | None,
    ticked: float,
    waited_ms: float,
) -> dict[str, Any]:
    output, data, matched, frames, timing = "", None, None, [], {}
    if completion is not None:
        output = _output(completion)
        overshoot = completion.get("overshoot")
        if isinstance(overshoot, dict):
            frames = list(overshoot.get("frames") or [])
            timing = dict(overshoot.get("timing") or {})
        if (watch.request.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
            with contextlib.suppress(ValueError):
                data = json.loads(output)
        trigger = watch.parsed_trigger
        matched = trigger.matches(output, data) if trigger is not None else None
    timing["gate_wait_ms"] = round(waited_ms, 3)
    timing["tick_to_result_ms"] = round((time.perf_counter() - ticked) * 1000, 3)
    return {
        "seq": None,
        "watch_id": watch.id,
        "at_ms": at_ms,
        "frames": frames,
        "output": output,
        "data": data,
        "matched": matched,
        "timing": timing,
        "error": {"code": error.code_for_envelope(), "message": error.message} if error else None,
    }


def _output(completion: dict[str, Any]) -> str:
    choices = completion.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            return str(message["content"])
    return ""
