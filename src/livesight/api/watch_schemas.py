"""Wire models of `/v1/watches` (docs/watches.md). The schema states exactly what validation checks;
what only the server's state can decide (a stream that exists, a URI that parses, a webhook host the
outbound policy allows) is a documented 400 or 404."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from livesight.core.jsontypes import JsonObject, JsonValue
from livesight.serving.protocol import ChatCompletionRequest, FramesUsed

JSON_PATH = r"""^\$(\.[A-Za-z_][A-Za-z0-9_-]*|\[-?[0-9]{1,9}\]|\['[^']*'\]|\["[^"]*"\])*$"""
WHSEC_SYNTAX = r"^whsec_([A-Za-z0-9+/]{4}){4,32}([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
Deliver = Literal["always", "match", "change"]
_ON = "Which results are delivered: every one (always), matches only (match), or when the matched state flips (change)"
_COOLDOWN = "match/change: hold back a delivery sooner than this after the previous delivered one"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JsonPathTrigger(_Strict):
    """Matches when the value at `json_path` of the answer's JSON equals `equals` (when given) or is truthy."""

    json_path: str = Field(pattern=JSON_PATH, max_length=500, description="$.name, $['name'] or $[0] steps")
    equals: JsonValue = Field(None, description="The value to compare with (JSON); absent: the value must be truthy")
    on: Deliver = Field("always", description=_ON)
    cooldown_ms: int = Field(0, ge=0, le=86_400_000, description=_COOLDOWN)


class ContainsTrigger(_Strict):
    """Matches when the answer text contains `contains` (case-insensitive)."""

    contains: str = Field(min_length=1, max_length=1000)
    on: Deliver = Field("always", description=_ON)
    cooldown_ms: int = Field(0, ge=0, le=86_400_000, description=_COOLDOWN)


class WebhookIn(_Strict):
    url: str = Field(
        pattern=r"^[hH][tT][tT][pP][sS]?://", max_length=2048, description="http(s) URL receiving each result"
    )
    secret: str | None = Field(
        None, pattern=WHSEC_SYNTAX, description="Standard Webhooks secret, whsec_<base64>; generated when absent"
    )


class WatchCreateRequest(_Strict):
    request: ChatCompletionRequest = Field(
        description="A /chat/completions body with ovs:// parts, run at each tick (`stream` is ignored)"
    )
    interval_ms: int = Field(ge=250, le=86_400_000, description="How often to ask")
    only_on_new_frames: bool = Field(True, description="Skip a tick when no stream has a frame newer than the last run")
    min_change: float | None = Field(
        None, ge=0, le=1, description="Skip a tick while the newest frame differs from the last one used by less"
    )
    trigger: JsonPathTrigger | ContainsTrigger | None = None
    webhook: WebhookIn | None = None
    expires_at_ms: int | None = Field(
        None, ge=0, le=2**53, description="When the watch ends (Unix ms); default: when its stream ends"
    )


class WatchUpdate(_Strict):
    state: Literal["active", "paused"] | None = Field(None, description="Pause or resume")
    interval_ms: int | None = Field(None, ge=250, le=86_400_000)


class ResultError(BaseModel):
    code: str
    message: str


class WatchResult(BaseModel):
    seq: int | None = Field(description="1, 2, … per watch; null on `last_result` when the trigger held it back")
    watch_id: str
    at_ms: int = Field(description="When the tick ran (Unix ms)")
    frames: list[FramesUsed]
    output: str = Field(description="The model's text")
    data: JsonValue = Field(description="The parsed JSON when response_format asked for JSON, else null")
    matched: bool | None = Field(description="Whether the trigger matched; null without a trigger or on error")
    timing: dict[str, float | None]
    error: ResultError | None


class SkipCounts(BaseModel):
    busy: int
    no_new_frames: int
    no_change: int


class WatchCounts(BaseModel):
    runs: int
    matches: int
    results: int
    errors: int
    skipped: SkipCounts
    held_back: int
    deliveries: int
    delivery_failures: int
    deliveries_abandoned: int


class WebhookOut(BaseModel):
    url: str
    secret: str | None = Field(None, description="Only in the create response")


class WatchOut(BaseModel):
    id: str
    object: Literal["watch"]
    state: Literal["active", "paused", "ended"]
    stream_ids: list[str]
    created_at_ms: int
    interval_ms: int
    only_on_new_frames: bool
    min_change: float | None
    trigger: JsonObject | None
    webhook: WebhookOut | None
    expires_at_ms: int | None
    ended_at_ms: int | None
    end_reason: Literal["deleted", "expired", "stream_ended", "failed", "node_lost"] | None
    last_error: ResultError | None
    last_run_at_ms: int | None
    last_seq: int
    counts: WatchCounts
    last_result: WatchResult | None
    request: JsonObject


class WatchList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WatchOut]


class ResultList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WatchResult]
    has_more: bool
    last_seq: int = Field(description="The watch's newest seq (pass as `after` to wait for newer ones)")


WATCH_EVENT_SCHEMA: dict[str, object] = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "id": {"type": "string", "description": "The result's seq (send as Last-Event-ID to resume)"},
        "event": {"type": "string", "enum": ["result", "end"]},
        "data": {"type": "string", "description": "A JSON watch result, or for `end` the JSON watch"},
    },
}
