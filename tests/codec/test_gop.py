"""The store's decoders give the pixels aiortc's decoders give (VP8: FFmpeg's vp8 against libvpx)."""

from __future__ import annotations

import av
import numpy as np
import pytest

from livesight.codec.gop import Cursor
from livesight.core.errors import FrameUndecodable
from tests.support.encoded import clip


@pytest.mark.parametrize(("codec", "aiortc_decoder"), [("vp8", "libvpx"), ("h264", "h264")])
def test_every_plane_equals_what_aiortcs_decoder_makes(codec: str, aiortc_decoder: str) -> None:
    reference = av.CodecContext.create(aiortc_decoder, "r")
    cursor = Cursor(codec)
    for index, data in enumerate(clip(codec, 60, width=640, height=360, noise=3.0)):
        (expected,) = reference.decode(av.Packet(data))  # type: ignore[attr-defined]
        got = cursor.feed(index, data)
        assert np.array_equal(got.to_ndarray(format="yuv420p"), expected.to_ndarray(format="yuv420p")), index
        assert cursor.index == index


def test_a_frame_the_decoder_refuses_leaves_the_cursor_unusable() -> None:
    cursor = Cursor("vp8")
    cursor.feed(0, clip("vp8", 1)[0])
    with pytest.raises(FrameUndecodable):
        cursor.feed(1, b"\x31\xff")
    assert (cursor.index, cursor.frame) == (-1, None)
