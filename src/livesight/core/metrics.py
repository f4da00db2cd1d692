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

    def decode_seconds(self, codec: str | None, seconds: float) -> None:
        """Time one received video frame took to decode (aiortc's decoder, or PyAV for pulled sources)."""
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


class WatchRecorder(Protocol):
    """What the watches record (labels are closed sets: no watch, stream or key ids)."""

    def watch_skipped(self, reason: str) -> None:
        """A tick that started no model call: `busy`, `no_new_frames` or `no_change`."""
        ...

    def watch_ran(self, ok: bool) -> None:
        """A tick's model call ended (with a result, or with an error result)."""
        ...

    def webhook_attempt(self, outcome: str) -> None:
        """One webhook attempt: `delivered`, `failed` (will be retried) or `abandoned` (given up)."""
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

    def decode_seconds(self, codec: str | None, seconds: float) -> None:
        pass

    def stream_created(self) -> None:
        pass

    def stream_ended(self, reason: str) -> None:
        pass

    def chat_done(self, model: str, timing: ChatTiming, frames: int) -> None:
        pass

    def chat_failed(self, model: str, exc: LivesightError) -> None:
        pass

    def watch_skipped(self, reason: str) -> None:
        pass

    def watch_ran(self, ok: bool) -> None:
        pass

    def webhook_attempt(self, outcome: str) -> None:
        pass


NULL_RECORDER = NullRecorder()  # a Recorder, a ChatRecorder and a WatchRecorder
