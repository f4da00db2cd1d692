"""Identifiers: stream ids are canonical lowercase UUID strings."""

from __future__ import annotations

import uuid


def new_stream_id() -> str:
    return str(uuid.uuid4())


def parse_stream_id(value: str) -> str | None:
    """The canonical form of a stream id, or None when `value` is not a UUID."""
    if len(value) != 36:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None
