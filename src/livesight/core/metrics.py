"""What lower layers record, without knowing about Prometheus (api/metrics.py implements it).

Every method is called on the event loop's hot path or a worker thread: implementations must be
cheap and thread-safe (prometheus-client's counters are). `NULL_RECORDER` records nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from livesight.core.errors import LivesightError


class Recorder(Protocol):
    def frame_received(self, codec: str | None) -> None:
        """A frame reached a stream's ingest target (kept or not)."""
        ...

    def frame_kept(self, codec: str | None) -> None:
        """A frame was appended to a stream's buffer."""
        ...

    def frame_dropped(self, codec: str | None) -> None:
        """A received frame was dropped before the buffer (the encoder pool fell behind)."""
        ...

    def encode_seconds(self, seconds: float) -> None:
        """Time one frame spent in the JPEG worker (reformat, scale and encode)."""
        ...

    def stream_created(self) -> None: ...

    def stream_ended(self, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ChatTiming:
    """One answered chat request's `overshoot.timing`, in ms."""

    resolve_ms: float
    upstream_first_token_ms: float | None
    total_ms: float
    newest_frame_age_ms: int | None


class ChatRecorder(Protocol):
    """What the chat serving layer records."""

    def chat_done(self, model: str, timing: ChatTiming, frames: int) -> None:
        """A chat request answered; `frames` is how many frames it sent."""
        ...

    def chat_failed(self, model: str, exc: LivesightError) -> None:
        """A chat request failed (before or after its answer began) with the error the client sees."""
        ...


class NullRecorder:
    def frame_received(self, codec: str | None) -> None:
        pass

    def frame_kept(self, codec: str | None) -> None:
        pass

    def frame_dropped(self, codec: str | None) -> None:
        pass

    def encode_seconds(self, seconds: float) -> None:
        pass

    def stream_created(self) -> None:
        pass

    def stream_ended(self, reason: str) -> None:
        pass

    def chat_done(self, model: str, timing: ChatTiming, frames: int) -> None:
        pass

    def chat_failed(self, model: str, exc: LivesightError) -> None:
        pass


NULL_RECORDER = NullRecorder()  # a Recorder and a ChatRecorder
