"""What lower layers record, without knowing about Prometheus (api/metrics.py implements it).

Every method is called on the event loop's hot path or a worker thread: implementations must be
cheap and thread-safe (prometheus-client's counters are). `NULL_RECORDER` records nothing.
"""

from __future__ import annotations

from typing import Protocol


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


NULL_RECORDER: Recorder = NullRecorder()
