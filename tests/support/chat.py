"""Backend-level chat requests for unit tests, written the way a client writes messages.

Dict parts go through the real builder (`serving.build`), so a test's request is one the server
could have built; a `MediaItem` in a content list stands for a resolved `ovs://` part.
"""

from __future__ import annotations

from typing import Any

from livesight.backends.request import ChatRequest, MediaPart, Message, Part
from livesight.core.media import MediaItem
from livesight.resolve.draft import RefPart
from livesight.serving.build import draft_from
from livesight.serving.protocol import ChatCompletionRequest


def chat_request(
    messages: list[dict[str, Any]], params: dict[str, Any] | None = None, *, include_usage: bool = False
) -> ChatRequest:
    built: list[Message[Part]] = []
    for message in messages:
        content = message.get("content")
        items = {i: p for i, p in enumerate(content)} if isinstance(content, list) else {}
        wire = {**message, "content": [p for p in items.values() if not isinstance(p, MediaItem)]} if items else message
        (draft,) = draft_from(ChatCompletionRequest.model_validate({"model": "m", "messages": [wire]})).messages
        others = iter(draft.parts)
        parts: list[Part] = []
        for i in range(len(items)):
            part = items[i]
            if isinstance(part, MediaItem):
                parts.append(MediaPart(part))
            else:
                given = next(others)
                assert not isinstance(given, RefPart), "an ovs:// part needs the resolver: use a MediaItem"
                parts.append(given)
        built.append(draft.with_parts(tuple(parts)))
    return ChatRequest(tuple(built), params or {}, include_usage=include_usage)
