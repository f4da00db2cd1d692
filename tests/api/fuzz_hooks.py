"""Schemathesis hooks for tests/api/test_openapi_fuzz.py, loaded by `st` through SCHEMATHESIS_HOOKS.

The fuzzer cannot know which model ids the server has or which streams exist: both are runtime state
that no schema can state. So most *positive* cases are pointed at what exists: chat requests at the
configured model (LIVESIGHT_FUZZ_MODEL) with their `image_url` / `video_url` parts turned into `ovs://`
frames and segments of a live stream that holds frames (LIVESIGHT_FUZZ_STREAM), and reads of a stream
or a frame at that stream. The rest keep what was drawn (an unknown model or stream is a documented
404). Negative cases are never touched: they must stay invalid. The choice is a function of the drawn
case, so a seed reproduces a run. The live stream is never deleted (see `map_case`).
"""

from __future__ import annotations

import json
import os
import random
import uuid
from typing import Any

import schemathesis

CHAT = "/v1/chat/completions"
READS = ("/v1/streams/{stream_id}", "/v1/streams/{stream_id}/frames/{frame_index}")
SHARE = 0.8  # of positive cases pointed at what exists
FRAMES = ("frame_index=-1", "frame_index=0", "frame_index=-3", "offset_ms=-500", "timestamp_ms=1000&tolerance_ms=200")
SEGMENTS = ("start_offset_ms=-3000&max_fps=1", "start_frame_index=0&end_frame_index=5&max_fps=2")
FRAME_INDEXES = (-1, -5, 0, 1, 10, 49)


def _target() -> tuple[str, str] | None:
    stream, model = os.environ.get("LIVESIGHT_FUZZ_STREAM"), os.environ.get("LIVESIGHT_FUZZ_MODEL")
    return (stream, model) if stream and model else None


def _chosen(case: Any) -> random.Random | None:
    """A Random seeded by the case when it is positive and drawn to be pointed at what exists."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    drawn = json.dumps([case.body, case.path_parameters, case.query], sort_keys=True, default=str)
    rnd = random.Random(drawn)
    return rnd if rnd.random() < SHARE else None


def _point_chat_at_the_stream(body: dict[str, Any], rnd: random.Random, stream: str, model: str) -> None:
    body["model"] = model
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else ():
            kind = part.get("type") if isinstance(part, dict) else None
            if kind in ("image_url", "video_url") and isinstance(part.get(kind), dict):
                query = rnd.choice(FRAMES if kind == "image_url" else SEGMENTS)
                part[kind]["url"] = f"ovs://streams/{stream}?{query}"


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    target = _target()
    path = case.operation.path
    if target is None or (path != CHAT and path not in READS):
        return case
    stream, model = target
    if path == "/v1/streams/{stream_id}" and case.operation.method.upper() == "DELETE":
        # Stateful runs learn the live stream's id from responses; deleting it would leave every later
        # chat case without frames, so such a DELETE is sent to an id that does not exist instead.
        if isinstance(case.path_parameters, dict) and case.path_parameters.get("stream_id") == stream:
            case.path_parameters["stream_id"] = str(uuid.UUID(int=0))
        return case
    rnd = _chosen(case)
    if rnd is None:
        return case
    if path == CHAT and isinstance(case.body, dict):
        _point_chat_at_the_stream(case.body, rnd, stream, model)
    elif path in READS and case.operation.method.upper() == "GET" and isinstance(case.path_parameters, dict):
        case.path_parameters["stream_id"] = stream
        if "frame_index" in case.path_parameters:
            case.path_parameters["frame_index"] = rnd.choice(FRAME_INDEXES)
    return case
