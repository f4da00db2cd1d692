"""Knobs of the embedded LiveKit-compatible endpoint (from Settings; tests set the test-only ones)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from livesight.settings import Settings


@dataclass(frozen=True, slots=True)
class IngestOptions:
    v1: bool = True
    """Serve `/rtc/v1` (single peer connection). Off: 404 on v1 paths, clients fall back to `/rtc`."""
    ping_interval_s: int = 5
    ping_timeout_s: int = 15
    no_frame_timeout_s: float = 5.0
    """Report a stream error when a published video track delivers no frame for this long."""
    remb_bps: int = 8_000_000
    """Fixed REMB announced to publishers (0: aiortc's own estimator); see ingest/remb.py."""
    simulcast: Literal["top", "reject"] = "top"
    """Simulcast publishers: receive only the top layer, or refuse them loudly."""
    refresh_token_interval_s: float = 300.0
    udp_receive_buffer_bytes: int = 2 * 1024 * 1024
    """SO_RCVBUF for the UDP sockets media arrives on (0: the kernel's default); see ingest/sockets.py."""
    keyframe_interval_s: float = 2.0
    """Ask publishers for a keyframe (PLI) when the last one is this old: it bounds decode work per read."""
    max_side: int = 1280
    """Frames are reported (and read as JPEG) at most this large on their longest side."""
    viewer_queue_frames: int = 90
    """Frames a viewer may fall behind before it skips to the next keyframe (ingest/viewer.py)."""
    stale_publisher_s: float = 12.0
    """A connected publisher silent this long may be replaced by a new connection for its stream."""
    drop_first_signal_after_s: float | None = None
    """Test knob: close each stream's first signalling connection after this long (forces a rejoin)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestOptions:
        return cls(
            v1=settings.ingest_v1,
            no_frame_timeout_s=settings.ingest_no_frame_timeout_seconds,
            remb_bps=settings.ingest_remb_bps,
            simulcast=settings.ingest_simulcast,
            keyframe_interval_s=settings.keyframe_interval_seconds,
            udp_receive_buffer_bytes=settings.ingest_udp_receive_buffer_kb * 1024,
            max_side=settings.frame_max_side,
        )
