"""Wire models of `POST /chat/completions` (CONTRACT §6): permissive requests, documented responses.

Requests accept unknown fields (forwarded to upstream models). Content parts are checked only as far
as livesight needs: `text` has a string `text`, `image_url` / `video_url` carry a URL string, other part
types pass through. The OpenAPI document states exactly these rules (no request it calls valid is refused
with a 422; tests/api/test_openapi_fuzz.py checks it).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class MediaUrl(_Open):
    url: str = Field(min_length=1, description="ovs://streams/{stream_id}?..., a data: URL, or an http(s) URL")


class TextPart(_Open):
    type: Literal["text"]
    text: str


class ImageUrlPart(_Open):
    """One frame: an `ovs://` frame URI, or any image URL (passed to the model unchanged)."""

    type: Literal["image_url"]
    image_url: MediaUrl


class VideoUrlPart(_Open):
    """A segment: an `ovs://` segment URI, or any video URL (passed to the model unchanged)."""

    type: Literal["video_url"]
    video_url: MediaUrl


_KNOWN_PARTS = ("text", "image_url", "video_url")


class OtherPart(_Open):
    """Any other part type (`input_audio`, `file`, ...): forwarded to the model as it is."""

    type: str = Field(min_length=1, json_schema_extra={"not": {"enum": list(_KNOWN_PARTS)}})

    @model_validator(mode="after")
    def _not_known(self) -> OtherPart:
        if self.type in _KNOWN_PARTS:  # unreachable through ContentPart's discriminator; keeps the model honest
            raise ValueError(f"a {self.type} part has its own shape")
        return self


def _part_type(value: object) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in _KNOWN_PARTS else "other"


# The schema says exactly what validation checks (one branch per `type`), so a request the OpenAPI
# document accepts is one the server accepts: `{"type": "video_url", "video_url": null}` is invalid in both.
ContentPart = Annotated[
    Annotated[TextPart, Tag("text")]
    | Annotated[ImageUrlPart, Tag("image_url")]
    | Annotated[VideoUrlPart, Tag("video_url")]
    | Annotated[OtherPart, Tag("other")],
    Discriminator(_part_type),
]


class ChatMessage(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None


class StreamOptions(_Open):
    include_usage: bool | None = None


class ChatCompletionRequest(_Open):
    """OpenAI chat completion request; unknown fields are forwarded to upstream models."""

    model: str = Field(min_length=1, description="A model id from GET /v1/models (case-sensitive)")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    thread_id: str | None = Field(None, description="Echoed in overshoot.cache.thread_id")
    max_completion_tokens: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    n: int | None = Field(None, ge=1, le=128)
    seed: int | None = None
    stop: str | list[str] | None = None
    response_format: dict[str, object] | None = None
    tools: list[dict[str, object]] | None = None
    tool_choice: str | dict[str, object] | None = None
    parallel_tool_calls: bool | None = None


# --- responses --------------------------------------------------------------------------------------


class Usage(_Open):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(_Open):
    role: str
    content: str | None = None
    tool_calls: list[dict[str, object]] | None = None


class Choice(_Open):
    index: int
    message: AssistantMessage
    finish_reason: str | None = None


class CacheInfo(BaseModel):
    thread_id: str | None
    cache_hit: bool
    cached_input_tokens: int


class FramesUsed(BaseModel):
    url: str = Field(description="The ovs:// URI as sent")
    stream_id: str
    frame_indexes: list[int] = Field(description="Lifetime indexes of the frames sent to the model")
    timestamps_ms: list[int] = Field(description="Their stream-clock times")


class Timing(BaseModel):
    resolve_ms: float
    upstream_first_token_ms: float | None
    total_ms: float
    newest_frame_age_ms: int | None = Field(description="Now minus the arrival time of the newest frame used")


class Overshoot(BaseModel):
    cache: CacheInfo
    frames: list[FramesUsed]
    timing: Timing


class ChatCompletion(_Open):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    overshoot: Overshoot


# One event of a `stream: true` answer, as an SSE parser reads it (OpenAPI 3.1: the schema of a
# text/event-stream response describes each event).
SSE_EVENT_SCHEMA: dict[str, object] = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "string",
            "description": 'A JSON chat.completion.chunk, one JSON {"error": {...}} event after an error once '
            "streaming began, and finally [DONE]",
        },
        "event": {"type": "string", "enum": ["message"]},
    },
}
