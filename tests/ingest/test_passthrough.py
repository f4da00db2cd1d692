"""The jitter buffer livesight puts in aiortc: frames out at their last packet, losses marked."""

from __future__ import annotations

from aiortc.rtp import RtpPacket

from livesight.ingest.passthrough import _LossMarkingJitterBuffer


def packet(seq: int, timestamp: int, data: bytes, marker: bool = False) -> RtpPacket:
    p = RtpPacket(payload_type=96, marker=int(marker), sequence_number=seq % 65536, timestamp=timestamp)
    p._data = data  # type: ignore[attr-defined]  # what aiortc's depayloader sets
    return p


def test_a_frame_leaves_at_its_marker_packet_not_one_frame_later() -> None:
    jb = _LossMarkingJitterBuffer(capacity=128, is_video=True)
    assert jb.add(packet(1, 3000, b"a"))[1] is None
    pli, frame = jb.add(packet(2, 3000, b"b", marker=True))
    assert frame is not None and (frame.data, frame.timestamp, pli) == (b"ab", 3000, False)
    assert jb.add(packet(3, 6000, b"c", marker=True))[1].data == b"c"  # type: ignore[union-attr]


def test_a_hole_holds_the_frame_until_the_packet_comes_back() -> None:
    jb = _LossMarkingJitterBuffer(capacity=128, is_video=True)
    assert jb.add(packet(10, 0, b"x", marker=True))[1] is not None
    assert jb.add(packet(11, 3000, b"1"))[1] is None
    assert jb.add(packet(13, 3000, b"3", marker=True))[1] is None  # 12 missing (NACKed, retransmitted)
    frame = jb.add(packet(12, 3000, b"2"))[1]
    assert frame is not None and frame.data == b"123"
    assert getattr(frame, "after_loss", False) is False


def test_the_first_frame_after_packets_given_up_on_is_marked() -> None:
    jb = _LossMarkingJitterBuffer(capacity=16, is_video=True)
    assert jb.add(packet(0, 0, b"k", marker=True))[1] is not None
    jb.add(packet(1, 3000, b"lost-half"))  # its second half never comes
    seq, out = 3, []
    for ts in range(2, 40):  # more frames than the buffer holds: it gives up on frame 3000
        out.append(jb.add(packet(seq, ts * 3000, b"f", marker=True)))
        seq += 1
    frames = [f for _, f in out if f is not None]
    assert any(pli for pli, _ in out)
    assert frames and getattr(frames[0], "after_loss", False) is True
    assert all(getattr(f, "after_loss", False) is False for f in frames[1:])


def test_audio_keeps_aiortcs_rule() -> None:
    jb = _LossMarkingJitterBuffer(capacity=16, prefetch=4)
    assert jb.add(packet(0, 0, b"a", marker=True))[1] is None


def test_padding_after_a_frame_is_not_a_frame() -> None:
    """libwebrtc probes bandwidth with empty packets that carry the previous frame's timestamp."""
    jb = _LossMarkingJitterBuffer(capacity=128, is_video=True)
    assert jb.add(packet(1, 3000, b"a", marker=True))[1] is not None
    assert jb.add(packet(2, 3000, b""))[1] is None
    assert jb.add(packet(3, 3000, b""))[1] is None
    frame = jb.add(packet(4, 6000, b"b", marker=True))[1]
    assert frame is not None and frame.data == b"b"


def test_frames_reach_the_sink_on_the_loop_and_the_end_marker_reaches_the_thread() -> None:
    import queue
    from types import SimpleNamespace

    from aiortc.jitterbuffer import JitterFrame

    from livesight.ingest.passthrough import Received, deliver_directly

    original: queue.Queue[object] = queue.Queue()
    receiver = SimpleNamespace(_RTCRtpReceiver__decoder_queue=original)
    got: list[Received] = []
    assert deliver_directly(receiver, got.append)
    direct = receiver._RTCRtpReceiver__decoder_queue
    vp8, opus = SimpleNamespace(name="VP8"), SimpleNamespace(name="opus")
    direct.put((vp8, JitterFrame(b"frame", 9000)))
    direct.put((opus, JitterFrame(b"audio", 960)))  # not video we keep: the thread decodes it as before
    direct.put(None)
    assert got == [Received("vp8", b"frame", 9000, False)]
    codec, frame = original.get_nowait()  # type: ignore[misc]
    assert codec is opus and frame.data == b"audio"
    assert original.get_nowait() is None  # then the end-of-track marker
    direct.put(None)
    assert direct.get() is None  # a decoder thread started after the swap reads the original queue
    assert not deliver_directly(SimpleNamespace(), got.append)  # an aiortc without the queue: thread path
