"""A pulled source's packets kept encoded: demuxed H264/VP8 packets → `EncodedPayload` frames, no decode.

The store (buffer/reader.py) decodes a GOP by feeding its frames one by one to a fresh decoder and
expects one picture per frame fed, in display order. So a pulled stream is kept encoded only when its
packets are exactly that:

- H264 or VP8 (`encoded_codec`); any other codec (MPEG-4, HEVC, MJPEG, ...) is decoded to JPEG at
  ingest, as before.
- No reordering: a stream with B-frames (`has_b_frames` from the container probe, a packet whose pts
  differs from its dts, or pts that do not increase) is decoded to JPEG too. What only shows mid-stream
  raises `NeedsDecode` before the packet is stored; the caller reopens the source in the JPEG path.
- One packet, one picture: a hidden VP8 frame (an alt-ref, `show_frame` 0) raises `NeedsDecode`; an
  H264 packet without a slice (parameter sets, SEI only) is held and put in front of the next packet.

H264 is stored as Annex-B with the SPS/PPS in front of each IDR (codec/bitstream.py reads the size
there, and a GOP then decodes by itself): MP4/MKV packets (AVCC, extradata starting with 1) pass the
`h264_mp4toannexb` bitstream filter, which inserts them; RTSP and MPEG-TS (HLS) packets are Annex-B
already, and an IDR that comes without its SPS gets the stream's extradata (RTSP: the SDP's
sprop-parameter-sets) in front of it.

Like the WebRTC tap (ingest/tap.py): sizes come from each keyframe, capped to `frame_max_side`;
frames before the first keyframe are dropped (counted); a packet FFmpeg flags corrupt (MPEG-TS
continuity errors, ...) or, on a network source, a timestamp gap (pts jumping ahead more than
`gap_ms`, or back: data went missing, e.g. an HLS segment that could not be fetched) marks the rest
of its GOP `damaged`, so reading it is `frame_undecodable`, never a wrong picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av
from av.bitstream import BitStreamFilterContext
from av.video.stream import VideoStream

from livesight.codec.bitstream import H264, VP8, keyframe, nal_units
from livesight.codec.jpeg import capped_size
from livesight.core.errors import NeedsDecode
from livesight.core.frame import EncodedPayload, FramePayload

KEPT_CODECS = {"h264": H264, "vp8": VP8}  # FFmpeg codec name → the store's codec
GAP_MS = 1000.0  # a pts step longer than this (and than 5 frame intervals) on a network source is lost data
_SLICES = {1, 5}  # H264 NAL unit types that carry a picture's slices (non-IDR, IDR)


def encoded_codec(stream: VideoStream) -> tuple[str | None, str]:
    """The codec the store keeps this stream in, or None (decode it to JPEG); and why, for the log."""
    ctx = stream.codec_context
    codec = KEPT_CODECS.get(ctx.name)
    if codec is None:
        return None, f"{ctx.name} is not kept encoded (only H264 and VP8 are)"
    if ctx.has_b_frames:
        return None, "it has B-frames (decode order is not display order)"
    return codec, "demux only, decoded on read"


@dataclass(frozen=True, slots=True)
class StoredPacket:
    media_ms: float | None
    width: int
    height: int
    payload: EncodedPayload

    def made(self) -> tuple[int, int, FramePayload]:
        return self.width, self.height, self.payload


class PacketFeed:
    """One session's packets of one stream → frames for the store. Raises `NeedsDecode`."""

    def __init__(
        self,
        codec: str,
        max_side: int,
        *,
        detect_gaps: bool,
        params: bytes = b"",
        frame_rate: float = 0.0,
        bsf: BitStreamFilterContext | None = None,
    ) -> None:
        self.codec = codec
        self.max_side = max_side
        self.detect_gaps = detect_gaps
        self.dropped = 0  # before the first keyframe
        self._bsf = bsf
        self._params = params  # Annex-B SPS/PPS to put in front of an IDR that lacks them
        self._gap_ms = max(GAP_MS, 5000 / frame_rate) if frame_rate > 0 else GAP_MS
        self._size: tuple[int, int] | None = None  # of the current GOP, as stored (capped)
        self._damaged = False
        self._last_ms: float | None = None
        self._held = b""  # H264 NAL units without a slice, for the next packet
        self._held_corrupt = False

    @classmethod
    def for_stream(cls, stream: VideoStream, codec: str, max_side: int, *, detect_gaps: bool) -> PacketFeed:
        extradata = stream.codec_context.extradata or b""
        avcc = codec == H264 and extradata[:1] == b"\x01"  # an AVCDecoderConfigurationRecord (MP4, MKV)
        return cls(
            codec,
            max_side,
            detect_gaps=detect_gaps,
            params=extradata if codec == H264 and not avcc else b"",
            frame_rate=float(stream.average_rate or 0),
            bsf=BitStreamFilterContext("h264_mp4toannexb", stream) if avcc else None,
        )

    def offer(self, packet: av.Packet[VideoStream]) -> list[StoredPacket]:
        """The frames to store for one demuxed packet (none for a dropped or held one)."""
        if packet.size == 0:  # the demuxer's end-of-stream packet
            return []
        corrupt = packet.is_corrupt
        if self._bsf is None:
            stored = self._frame(bytes(packet), packet.pts, packet.dts, packet.time_base, corrupt)
            return [] if stored is None else [stored]
        out = [self._frame(bytes(p), p.pts, p.dts, p.time_base, corrupt) for p in self._bsf.filter(packet)]
        return [f for f in out if f is not None]

    def _frame(
        self, data: bytes, pts: int | None, dts: int | None, time_base: Fraction | None, corrupt: bool
    ) -> StoredPacket | None:
        if self.codec == H264:
            units = nal_units(self._held + data)
            if not any(u[0] & 0x1F in _SLICES for u in units):  # no picture: it rides with the next packet
                self._held += data
                self._held_corrupt |= corrupt
                return None
            data, self._held = self._held + data, b""
            corrupt, self._held_corrupt = corrupt or self._held_corrupt, False
            if self._params and any(u[0] & 0x1F == 5 for u in units) and not any(u[0] & 0x1F == 7 for u in units):
                data = self._params + data
        elif not data[0] & 0x10:  # VP8 show_frame 0
            raise NeedsDecode("a hidden VP8 frame (alt-ref): not one picture per packet")
        if pts is not None and dts is not None and pts != dts:
            raise NeedsDecode("packets are reordered (pts differs from dts: B-frames)")
        ms = timestamp_ms(pts, time_base)
        gap = self._check_step(ms)
        key = keyframe(self.codec, data)
        if key is not None:
            self._size = capped_size(key.width, key.height, self.max_side)
            self._damaged = corrupt
        elif self._size is None:
            self.dropped += 1
            return None
        elif corrupt or gap:
            self._damaged = True
        width, height = self._size
        payload = EncodedPayload(data, self.codec, keyframe=key is not None, damaged=self._damaged)
        return StoredPacket(ms, width, height, payload)

    def _check_step(self, ms: float | None) -> bool:
        """Whether data went missing before a packet at `ms` (a gap); NeedsDecode if pts do not increase."""
        last, self._last_ms = self._last_ms, ms if ms is not None else self._last_ms
        if ms is None or last is None:
            return False
        if ms <= last and last - ms < self._gap_ms:
            raise NeedsDecode(f"pts do not increase ({last:.0f} ms then {ms:.0f} ms): reordered frames")
        return self.detect_gaps and abs(ms - last) > self._gap_ms


def timestamp_ms(pts: int | None, time_base: Fraction | None) -> float | None:
    """A packet's or frame's media time in ms."""
    if pts is None or time_base is None:
        return None
    return float(Fraction(pts) * time_base * 1000)
