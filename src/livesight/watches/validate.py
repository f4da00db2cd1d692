"""Checks of a new watch that need the server's state: its streams, its webhook's destination."""

from __future__ import annotations

import logging

import httpx

from livesight.core.errors import RequestInvalid
from livesight.core.outbound import OutboundPolicy, OutboundRefused
from livesight.ingest.egress import resolve_checked
from livesight.resolve.draft import ChatDraft
from livesight.streams.directory import StreamDirectory

log = logging.getLogger("livesight.watches")


def stream_ids_of(draft: ChatDraft, streams: StreamDirectory, owner: str) -> list[str]:
    """The streams a watch's request names (its parsed draft), each checked to be an active stream of
    `owner` (404 otherwise)."""
    ids = draft.stream_ids
    if not ids:
        raise RequestInvalid(
            "a watch's request needs at least one ovs:// image_url or video_url part naming the stream to watch"
        )
    for sid in ids:
        streams.get_active(sid, owner)  # StreamNotFound / StreamUnauthorized: both 404 here
    return ids


async def check_webhook(url: str, policy: OutboundPolicy) -> None:
    """400 for a malformed URL or one whose host the outbound policy refuses (a generic message)."""
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL:
        raise RequestInvalid("webhook url is not a valid http(s) URL") from None
    if target.scheme not in ("http", "https") or not target.host:
        raise RequestInvalid("webhook url must be an http:// or https:// URL with a host")
    port = target.port or (443 if target.scheme == "https" else 80)
    try:
        await resolve_checked(policy, target.host, port)
    except OutboundRefused as exc:
        log.warning("webhook %s refused: %s", target.host, exc.message)
        message = "webhook url: this server's outbound policy does not allow that destination"
        raise OutboundRefused(message) from None
    except (OSError, UnicodeError) as exc:  # a name that does not resolve now may later; deliveries will say
        log.info("webhook host %s did not resolve at create: %s", target.host, exc)
