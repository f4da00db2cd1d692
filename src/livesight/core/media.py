"""Resolved media: what an `ovs://` part (or an inline image) becomes before it reaches a model.

The resolver produces these; backends render them into whatever the model accepts (a JPEG frame-list
video for vLLM, an mp4, N images with timestamps) or, for built-in models, read the pixels directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class MediaFrame:
    """One frame sent to a model. Index and times are None for inline (non-ovs) images."""

    jpeg: bytes
    width: int
    height: int
    index: int | None = None
    timestamp_ms: int | None = None  # stream-clock time
    arrived_at_ms: int | None = None  # wall-clock arrival


@dataclass(frozen=True, slots=True)
class MediaItem:
    """One image or video part of a chat request, resolved to frames (oldest first)."""

    kind: Literal["image", "video"]
    url: str  # the URL as the client sent it (ovs://… or data:…)
    frames: tuple[MediaFrame, ...]
    stream_id: str | None = None
    max_fps: float | None = None  # the sampling rate of a segment

    @property
    def duration_ms(self) -> int:
        stamps = [f.timestamp_ms for f in self.frames if f.timestamp_ms is not None]
        return stamps[-1] - stamps[0] if len(stamps) > 1 else 0
