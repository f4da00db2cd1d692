"""The validated wire request → a `ChatDraft`: typed messages, `ovs://` URIs parsed (400s here).

The one place that reads the wire models' content parts. `params` are the request's other fields
as the client set them (forwarded to upstreams); livesight's own fields are not in it.
"""

from __future__ import annotations

from livesight.backends.request import Message, PassPart, TextPart
from livesight.core.jsontypes import JsonObject
from livesight.resolve.draft import ChatDraft, DraftPart, RefPart
from livesight.resolve.uri import is_ovs_url, parse_frame_uri, parse_segment_uri
from livesight.serving.protocol import ChatCompletionRequest, ChatMessage, ContentPart, ImageUrlPart, VideoUrlPart
from livesight.serving.protocol import TextPart as WireTextPart

LOCAL_FIELDS = ("model", "messages", "stream", "stream_options", "thread_id")


def draft_from(body: ChatCompletionRequest) -> ChatDraft:
    params: JsonObject = body.model_dump(mode="json", exclude_unset=True)
    for name in LOCAL_FIELDS:
        params.pop(name, None)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return ChatDraft(tuple(_message(m) for m in body.messages), params, include_usage)


def _message(message: ChatMessage) -> Message[DraftPart]:
    fields: JsonObject = message.model_dump(mode="json", exclude_unset=True, exclude={"role", "content"})
    content_set = "content" in message.model_fields_set
    if not isinstance(message.content, list):
        return Message(message.role, message.content, fields, content_set)
    return Message(message.role, tuple(_part(p) for p in message.content), fields, content_set)


def _part(part: ContentPart) -> DraftPart:
    if isinstance(part, WireTextPart):
        extra: JsonObject = part.model_dump(mode="json", exclude_unset=True, exclude={"type", "text"})
        return TextPart(part.text, extra)
    if isinstance(part, ImageUrlPart) and is_ovs_url(part.image_url.url):
        return RefPart(parse_frame_uri(part.image_url.url))
    if isinstance(part, VideoUrlPart) and is_ovs_url(part.video_url.url):
        return RefPart(parse_segment_uri(part.video_url.url))
    return PassPart(part.type, part.model_dump(mode="json", exclude_unset=True))
