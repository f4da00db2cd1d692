"""The seam through which a watch runs its chat request: the chat pipeline's serving object.

`check` refuses at create what every tick would be refused for; `complete` returns the whole
`chat.completion` as `POST /chat/completions` would send it, including `overshoot` (`frames`,
`timing`), and raises `LivesightError` subclasses (`status`, `code`, `message`) on failure. Tests
drive the scheduler with a small fake of this protocol.
"""

from __future__ import annotations

from typing import Protocol

from livesight.core.errors import LivesightError
from livesight.core.jsontypes import JsonObject
from livesight.resolve.draft import ChatDraft
from livesight.serving.protocol import ChatCompletionRequest


class ChatRunner(Protocol):
    """`livesight.serving.chat.ChatService` in the server; a fake in the scheduler's tests."""

    async def complete(self, body: ChatCompletionRequest, owner: str) -> JsonObject: ...

    async def check(self, body: ChatCompletionRequest) -> ChatDraft:
        """At create: what the request would be refused for whatever the streams (unknown model 404,
        bad URI or media the model does not take 400); the parsed draft otherwise."""
        ...


# Codes of 4xx errors that a later tick can heal (frames not there yet, a rate limit); every other 4xx
# (stream gone, model removed, a request the model cannot take) ends the watch.
HEALING_CODES = frozenset(
    {
        "segment_empty",
        "frame_not_yet_produced",
        "frame_evicted",
        "rate_limit_exceeded",
        "upstream_http_429",
        "upstream_http_408",
        "upstream_busy",
        "model_not_ready",
    }
)


def ends_watch(exc: LivesightError) -> bool:
    """A 4xx that will not heal: the watch ends (`failed`) instead of retrying at the next tick."""
    status, code = exc.status_for_envelope(), exc.code_for_envelope()
    return 400 <= status < 500 and status not in (408, 409, 410, 425, 429) and code not in HEALING_CODES
