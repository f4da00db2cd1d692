from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from livesight.backends import imaging as image
from livesight.core.errors import ImageUndecodable
from tests.backends.ocr.pictures import RED, Scene, draw, jpeg, png


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares a size but carries no pixel data (enough for Pillow to read its header)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_decode_rgb_and_small_copy_of_a_jpeg() -> None:
    data = jpeg(draw(Scene(width=1280, height=720, background=RED)))
    rgb = image.decode_rgb(data)
    assert rgb.shape == (720, 1280, 3)
    small, size = image.decode_small(data)
    assert size == (1280, 720)
    assert small.shape == (72, 128, 3)
    assert np.abs(small.astype(int).mean(axis=(0, 1)) - RED).max() < 4


def test_decode_rgb_scales_down_past_max_side() -> None:
    data = jpeg(draw(Scene(width=1000, height=500)))
    assert image.decode_rgb(data, max_side=400).shape == (200, 400, 3)


def test_png_greyscale_and_alpha_decode_to_rgb() -> None:
    assert image.decode_rgb(png(Image.new("L", (30, 20), 200))).shape == (20, 30, 3)
    small, size = image.decode_small(png(Image.new("RGBA", (300, 100), (1, 2, 3, 4))))
    assert (small.shape, size) == ((43, 128, 3), (300, 100))


def test_tiny_image_keeps_its_size() -> None:
    small, size = image.decode_small(jpeg(Image.new("RGB", (1, 1), (9, 9, 9))))
    assert (small.shape, size) == ((1, 1, 3), (1, 1))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"not an image at all", "not a recognised image format"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 40, "header is corrupt|not a recognised"),
        (jpeg(draw(Scene()))[:3000], "truncated or corrupt"),
        (png_header(10_000, 5_000), "too large"),
        (png_header(100_000, 100_000), "too large"),
        (png_header(0, 10), "no pixels|corrupt|not a recognised"),
    ],
    ids=["empty", "garbage", "bad-jpeg-header", "truncated", "50MP", "10GP", "zero-width"],
)
def test_undecodable_bytes_raise_a_typed_error(data: bytes, message: str) -> None:
    for decode in (image.decode_rgb, image.decode_small):
        with pytest.raises(ImageUndecodable, match=message) as caught:
            decode(data)
        assert "0x" not in caught.value.message  # no object addresses or internals


def test_resize_rgb() -> None:
    rgb = np.zeros((4, 8, 3), dtype=np.uint8)
    assert image.resize_rgb(rgb, (4, 8)) is rgb
    assert image.resize_rgb(rgb, (2, 3)).shape == (2, 3, 3)
