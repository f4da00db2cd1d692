"""Wire models of `POST /chat/completions` (CONTRACT §6): permissive requests, documented responses.

Requests accept unknown fields (forwarded to upstream models). Content parts are checked only as far
as livesight needs: `text` has a string `text`, `image_url` / `video_url` carry a URL string.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class MediaUrl(_Open):
    url: str = Field(min_length=1, description="ovs://streams/{stream_id}?..., a data: URL, or an http(s) URL")


class ContentPart(_Open):
    """`text`, `image_url` (`ovs://` frame or any image URL), `video_url` (`ovs://` segment or any video URL)."""

    type: str = Field(min_length=1, examples=["text", "image_url", "video_url"])
    text: str | None = None
    image_url: MediaUrl | None = None
    video_url: MediaUrl | None = None

    @model_validator(mode="after")
    def _shape(self) -> ContentPart:
        if self.type == "text" and self.text is None:
            raise ValueError("a text part needs a string 'text'")
        if self.type == "image_url" and self.image_url is None:
            raise ValueError("an image_url part needs 'image_url': {'url': ...}")
        if self.type == "video_url" and self.video_url is None:
            raise ValueError("a video_url part needs 'video_url': {'url': ...}")
        return self


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
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None


# --- responses --------------------------------------------------------------------------------------


class Usage(_Open):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(_Open):
    role: str
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


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
