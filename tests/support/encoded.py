"""Numbered test-pattern clips encoded as WebRTC publishers send them (VP8, or H264 Annex-B baseline).

Frame n of a clip shows the number n in its pixels (`read_frame_number`), so a stored frame decoded
by the store can be checked to be exactly frame n. Encoding is done once per (codec, size, count, gop).
"""

from __future__ import annotations

import functools
from fractions import Fraction

import av
import numpy as np
import simplejpeg
from av.video.codeccontext import VideoCodecContext

from livesight.codec.bitstream import keyframe
from livesight.core.frame import EncodedPayload, IngestFrame
from livesight.ingest.pattern import TestPattern, read_frame_number

_ENCODERS = {"vp8": ("libvpx", {"deadline": "realtime", "cpu-used": "8"}), "h264": ("libx264", {
    "preset": "ultrafast", "tune": "zerolatency", "profile": "baseline"})}  # fmt: skip


@functools.cache
def clip(
    codec: str,
    count: int,
    *,
    gop: int = 30,
    width: int = 320,
    height: int = 180,
    first: int = 0,
    bit_rate: int = 500_000,
    noise: float = 0.0,
) -> tuple[bytes, ...]:
    """`count` encoded frames showing the numbers first..first+count-1, a keyframe every `gop` frames.
    `noise` adds Gaussian sensor noise of that sigma (camera-like bitrates; the numbers stay readable)."""
    name, options = _ENCODERS[codec]
    ctx = av.CodecContext.create(name, "w")
    assert isinstance(ctx, VideoCodecContext)
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = Fraction(1, 30)
    ctx.bit_rate = bit_rate
    ctx.gop_size = gop
    ctx.options = {**options, **({"keyint_min": str(gop), "sc_threshold": "0"} if codec == "h264" else {})}
    pattern = TestPattern(width, height)
    rng = np.random.default_rng(0)
    out: list[bytes] = []
    for n in range(first, first + count):
        frame = av.VideoFrame(width, height, "yuv420p")
        data = pattern.render(n, now=0.0)
        if noise:
            luma = np.frombuffer(data, np.uint8, width * height).astype(np.int16)
            luma += rng.normal(0, noise, luma.shape).astype(np.int16)
            data = np.clip(luma, 0, 255).astype(np.uint8).tobytes() + data[width * height :]
        y = width * height
        for plane, (offset, size) in zip(frame.planes, [(0, y), (y, y // 4), (y + y // 4, y // 4)], strict=True):
            plane.update(data[offset : offset + size])
        frame.pts = n - first
        out += [bytes(p) for p in ctx.encode(frame)]
    out += [bytes(p) for p in ctx.encode(None)]
    assert len(out) == count
    return tuple(out)


def frames(codec: str, datas: tuple[bytes, ...], *, session: str = "s", damaged_from: int | None = None,
           first_ms: float = 0.0) -> list[IngestFrame]:  # fmt: skip
    """IngestFrames as the tap makes them (sizes from each GOP's keyframe, 30 fps media times)."""
    out: list[IngestFrame] = []
    size = (0, 0)
    for i, data in enumerate(datas):
        key = keyframe(codec, data)
        if key is not None:
            size = (key.width, key.height)
        damaged = damaged_from is not None and i >= damaged_from and key is None
        payload = EncodedPayload(data, codec, keyframe=key is not None, damaged=damaged)
        out.append(IngestFrame(session, first_ms + i * 1000 / 30, size[0], size[1], payload))
    return out


def number(jpeg: bytes) -> int | None:
    luma = simplejpeg.decode_jpeg(jpeg, colorspace="GRAY")[:, :, 0]
    return read_frame_number(np.ascontiguousarray(luma))
