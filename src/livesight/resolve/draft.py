"""A chat request before resolution: its `ovs://` parts parsed, nothing looked up yet.

Built from the validated wire request by `serving.build`; the capability checks of a model (does it
take images, video) run on it before any stream is looked up, so they are 400s whatever the streams.
`ChatResolver` turns it into the backends' `ChatRequest`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from livesight.backends.request import Message, PassPart, TextPart
from livesight.core.errors import ModelImageUnsupported, ModelVideoUnsupported
from livesight.core.jsontypes import JsonObject
from livesight.resolve.uri import FrameRef, SegmentRef, shown
from livesight.settings import ModelConfig


@dataclass(frozen=True, slots=True)
class RefPart:
    """An `ovs://` image_url (a frame) or video_url (a segment), parsed but not resolved."""

    ref: FrameRef | SegmentRef

    @property
    def kind(self) -> str:
        return "image_url" if isinstance(self.ref, FrameRef) else "video_url"


DraftPart = TextPart | RefPart | PassPart


@dataclass(frozen=True, slots=True)
class ChatDraft:
    messages: tuple[Message[DraftPart], ...]
    params: JsonObject = field(default_factory=dict)
    include_usage: bool = False

    def refs(self) -> Iterator[FrameRef | SegmentRef]:
        for message in self.messages:
            for part in message.parts:
                if isinstance(part, RefPart):
                    yield part.ref

    @property
    def stream_ids(self) -> list[str]:
        """The streams the request reads, each once, in the order first named."""
        return list(dict.fromkeys(ref.stream_id for ref in self.refs()))

    def inline_media_count(self) -> int:
        """image_url / video_url parts that are not `ovs://` (each sends one item as it is)."""
        return sum(1 for m in self.messages for p in m.parts if isinstance(p, PassPart) and p.url is not None)

    def check_capabilities(self, model: ModelConfig) -> None:
        """400 when a part asks for video (or images) from a model that does not take them."""
        for message in self.messages:
            for part in message.parts:
                if isinstance(part, RefPart):
                    kind, url = part.kind, part.ref.url
                elif isinstance(part, PassPart) and part.url is not None:
                    kind, url = part.kind, part.url
                else:
                    continue
                if kind == "video_url" and not model.video:
                    raise ModelVideoUnsupported(
                        f"model {model.id} does not accept video: video_url {shown(url)} cannot be sent to it "
                        "(ask about single frames with image_url, or pick a model with video support)"
                    )
                if kind == "image_url" and not model.image:
                    raise ModelImageUnsupported(f"model {model.id} does not accept images: image_url {shown(url)}")
