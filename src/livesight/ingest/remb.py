"""A fixed receiver bitrate estimate (REMB) for aiortc's video receivers.

aiortc only sends REMB from its own delay-based estimator and cannot give transport-cc feedback, so a
libwebrtc publisher ramps up slowly: with MAINTAIN_RESOLUTION a 720p30 publisher then drops to
~10 fps for the first 15-20 s. On a LAN or loopback the link is not the bottleneck, so livesight
announces a fixed estimate instead (setting `ingest_remb_bps`; 0 keeps aiortc's estimator).

This touches one private attribute of `aiortc.RTCRtpReceiver` (aiortc is pinned to 1.16.0; a test
fails if the attribute moves).
"""

from __future__ import annotations

from aiortc import RTCRtpReceiver

ESTIMATOR_ATTRIBUTE = "_RTCRtpReceiver__remote_bitrate_estimator"


class FixedRemb:
    """Stands in for aiortc's RemoteBitrateEstimator: the same `add()`, a constant answer."""

    def __init__(self, bitrate_bps: int, interval_ms: int = 500) -> None:
        self.bitrate_bps = bitrate_bps
        self.interval_ms = interval_ms
        self._last_ms: int | None = None

    def add(
        self, abs_send_time: int, arrival_time_ms: int, payload_size: int, ssrc: int
    ) -> tuple[int, list[int]] | None:
        """aiortc calls this per RTP packet; a (bitrate, ssrcs) result is sent as REMB."""
        if self._last_ms is not None and arrival_time_ms - self._last_ms < self.interval_ms:
            return None
        self._last_ms = arrival_time_ms
        return self.bitrate_bps, [ssrc]


def install_fixed_remb(receiver: RTCRtpReceiver, bitrate_bps: int) -> bool:
    """Replace a video receiver's estimator; False when it has none (audio) or already a fixed one."""
    current = getattr(receiver, ESTIMATOR_ATTRIBUTE, None)
    if current is None or isinstance(current, FixedRemb):
        return False
    setattr(receiver, ESTIMATOR_ATTRIBUTE, FixedRemb(bitrate_bps))
    return True
