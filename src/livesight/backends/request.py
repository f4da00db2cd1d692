"""What a backend receives: one chat request, resolved, as one typed value (CONTRACT §6).

`serving.build` makes a `Message[DraftPart]` list straight from the validated wire request;
`resolve.request.ChatResolver` replaces each `ovs://` reference by a `MediaPart` (frames with their
stream times) and hands the backend a `ChatRequest`. Nothing walks dicts to find media again: a part is a
`TextPart`, a resolved `MediaPart`, or a `PassPart` the client wrote and the model receives unchanged (an
inline `data:`/http image or video, an `input_audio`, any type livesight does not read). A new part type
is one more class here and one more branch where parts are rendered (`render.py`, `builtin.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from livesight.core.jsontypes import JsonObject
from livesight.core.media import MediaItem


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str
    extra: JsonObject = field(default_factory=dict)  # the part's other fields (e.g. cache_control), forwarded

    def wire(self) -> JsonObject:
        return {"type": "text", "text": self.text, **self.extra}


@dataclass(frozen=True, slots=True)
class MediaPart:
    """An `ovs://` image_url / video_url part, resolved to frames."""

    item: MediaItem


@dataclass(frozen=True, slots=True)
class PassPart:
    """A part sent to the model exactly as the client wrote it."""

    kind: str  # its `type`
    raw: JsonObject

    @property
    def url(self) -> str | None:
        """The URL of an image_url / video_url part (None for other types)."""
        if self.kind not in ("image_url", "video_url"):
            return None
        ref = self.raw.get(self.kind)
        url = ref.get("url") if isinstance(ref, dict) else None
        return url if isinstance(url, str) else None


Part = TextPart | MediaPart | PassPart
P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class Message(Generic[P]):
    """One chat message. `content` is the client's string, its parts, or None (sent as null, or not at
    all when `content_set` is false); `fields` are the message's other fields as sent (name, tool_calls…)."""

    role: str
    content: str | tuple[P, ...] | None
    fields: JsonObject = field(default_factory=dict)
    content_set: bool = True

    @property
    def parts(self) -> tuple[P, ...]:
        return self.content if isinstance(self.content, tuple) else ()

    def with_parts(self, parts: tuple[Part, ...]) -> Message[Part]:
        """This message with `parts` in place of its parts (a string or null content stays as it is)."""
        content = parts if isinstance(self.content, tuple) else self.content
        return Message(self.role, content, self.fields, self.content_set)

    def wire(self, content: object) -> dict[str, object]:
        """The message as JSON, with `content` (already rendered by the caller) in place of its own."""
        out: dict[str, object] = {"role": self.role, **self.fields}
        if self.content_set:
            out["content"] = content
        return out


def message_text(message: Message[Part]) -> str:
    """The text a message says: its string, or its text parts one per line."""
    if isinstance(message.content, str):
        return message.content
    return "\n".join(p.text for p in message.parts if isinstance(p, TextPart))


@dataclass(frozen=True, slots=True)
class FramesUsed:
    """One `overshoot.frames` entry: the frames a resolved part sent."""

    url: str
    stream_id: str
    frame_indexes: tuple[int, ...]
    timestamps_ms: tuple[int, ...]

    def wire(self) -> JsonObject:
        return {
            "url": self.url,
            "stream_id": self.stream_id,
            "frame_indexes": list(self.frame_indexes),
            "timestamps_ms": list(self.timestamps_ms),
        }


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A resolved chat request. `params` are the client's other fields, forwarded as sent (`model`,
    `messages`, `stream`, `stream_options` and livesight's own fields are not in it)."""

    messages: tuple[Message[Part], ...]
    params: JsonObject = field(default_factory=dict)
    include_usage: bool = False

    def media_parts(self) -> Iterator[MediaPart | PassPart]:
        """Every image_url / video_url part in request order: resolved ones, and inline ones as sent."""
        for message in self.messages:
            for part in message.parts:
                if isinstance(part, MediaPart) or (isinstance(part, PassPart) and part.url is not None):
                    yield part

    def media(self) -> Iterator[MediaItem]:
        """Every resolved item, in request order (an item referenced twice appears twice)."""
        return (p.item for p in self.media_parts() if isinstance(p, MediaPart))

    def inline_media(self) -> Iterator[PassPart]:
        """The image_url / video_url parts that were not `ovs://` (inline data: URLs, http URLs)."""
        return (p for p in self.media_parts() if isinstance(p, PassPart))

    def frames_used(self) -> list[FramesUsed]:
        """The `overshoot.frames` report: one entry per resolved part, in request order."""
        return [
            FramesUsed(
                item.url,
                item.stream_id,
                tuple(f.index for f in item.frames if f.index is not None),
                tuple(f.timestamp_ms for f in item.frames if f.timestamp_ms is not None),
            )
            for item in self.media()
            if item.stream_id is not None
        ]

    @property
    def newest_arrival_ms(self) -> int | None:
        """The wall-clock arrival of the newest frame any part sends (None without resolved frames)."""
        arrivals = [f.arrived_at_ms for item in self.media() for f in item.frames if f.arrived_at_ms is not None]
        return max(arrivals) if arrivals else None
