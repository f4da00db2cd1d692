"""The fixed REMB relies on one private attribute of aiortc's receiver: fail loudly if it moves."""

from __future__ import annotations

import asyncio

from aiortc import RTCPeerConnection

from livesight.ingest.remb import ESTIMATOR_ATTRIBUTE, FixedRemb, install_fixed_remb


def test_aiortc_video_receivers_have_the_estimator_we_replace() -> None:
    async def go() -> tuple[bool, bool, bool]:
        pc = RTCPeerConnection()
        video = pc.addTransceiver("video", direction="recvonly").receiver
        audio = pc.addTransceiver("audio", direction="recvonly").receiver
        assert getattr(video, ESTIMATOR_ATTRIBUTE) is not None
        result = install_fixed_remb(video, 5_000_000), install_fixed_remb(audio, 5_000_000)
        again = install_fixed_remb(video, 5_000_000)
        await pc.close()
        return result[0], result[1], again

    installed_video, installed_audio, again = asyncio.run(go())
    assert installed_video
    assert not installed_audio
    assert not again


def test_fixed_remb_reports_at_most_once_per_interval() -> None:
    remb = FixedRemb(3_000_000, interval_ms=500)
    assert remb.add(0, 1000, 1200, 42) == (3_000_000, [42])
    assert remb.add(0, 1200, 1200, 42) is None
    assert remb.add(0, 1500, 1200, 42) == (3_000_000, [42])
