"""A synthetic video: colour bars, a moving box, a frame counter, a clock, a label, and the frame
number encoded in the pixels so it can be read back from a decoded (even scaled, lossy) frame.

Frames are I420 (what encoders take, 1.5 bytes per pixel). The number is a row of 32 blocks at the
top: 16 bits of `n mod 65536`, most significant first, then their complement as a check, each block
`width / 40` pixels wide. `read_frame_number` samples the block centres of a luma plane and returns
None when the check fails, so a damaged frame is never misread.
"""

from __future__ import annotations

import time

import numpy as np
from numpy.typing import NDArray

BITS = 16
BLOCKS_PER_WIDTH = 40
_WHITE, _BLACK = 235, 16

# 5x7 glyphs, one string of 7 rows of 5 bits per character.
_GLYPHS = {
    "0": "01110 10001 10011 10101 11001 10001 01110",
    "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111",
    "3": "11110 00001 00001 01110 00001 00001 11110",
    "4": "00010 00110 01010 10010 11111 00010 00010",
    "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110",
    "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110",
    "9": "01110 10001 10001 01111 00001 00010 01100",
    ":": "00000 01100 01100 00000 01100 01100 00000",
    ".": "00000 00000 00000 00000 00000 01100 01100",
    "-": "00000 00000 00000 11111 00000 00000 00000",
    " ": "00000 00000 00000 00000 00000 00000 00000",
    "A": "01110 10001 10001 11111 10001 10001 10001",
    "E": "11111 10000 10000 11110 10000 10000 11111",
    "F": "11111 10000 10000 11110 10000 10000 10000",
    "G": "01110 10001 10000 10111 10001 10001 01111",
    "H": "10001 10001 10001 11111 10001 10001 10001",
    "I": "01110 00100 00100 00100 00100 00100 01110",
    "L": "10000 10000 10000 10000 10000 10000 11111",
    "M": "10001 11011 10101 10101 10001 10001 10001",
    "N": "10001 11001 10101 10011 10001 10001 10001",
    "P": "11110 10001 10001 11110 10000 10000 10000",
    "R": "11110 10001 10001 11110 10100 10010 10001",
    "S": "01111 10000 10000 01110 00001 00001 11110",
    "T": "11111 00100 00100 00100 00100 00100 00100",
    "U": "10001 10001 10001 10001 10001 10001 01110",
    "V": "10001 10001 10001 10001 10001 01010 00100",
}
# Colour bars (Y, U, V): white, yellow, cyan, green, magenta, red, blue, black (BT.601, limited range).
_BARS = [(235, 128, 128), (210, 16, 146), (170, 166, 16), (145, 54, 34), (106, 202, 222), (81, 90, 240),
         (41, 240, 110), (16, 128, 128)]  # fmt: skip


def _glyph(char: str, scale: int) -> NDArray[np.bool_]:
    rows = _GLYPHS.get(char.upper(), _GLYPHS[" "]).split()
    bitmap = np.array([[c == "1" for c in row] for row in rows], dtype=bool)
    return np.kron(bitmap, np.ones((scale, scale), dtype=bool)).astype(bool)


class TestPattern:
    """Renders frame `n` of a width x height pattern as I420 bytes."""

    __test__ = False  # not a pytest class

    def __init__(self, width: int, height: int, label: str = "LIVESIGHT TEST PATTERN") -> None:
        if width % 2 or height % 2 or width < 160 or height < 90:
            raise ValueError("the test pattern needs an even size of at least 160x90")
        self.width, self.height, self.label = width, height, label
        self.block = width // BLOCKS_PER_WIDTH
        self._glyphs: dict[tuple[str, int], NDArray[np.bool_]] = {}
        self._y = np.empty((height, width), np.uint8)
        self._u = np.empty((height // 2, width // 2), np.uint8)
        self._v = np.empty((height // 2, width // 2), np.uint8)
        bar_w = width // len(_BARS)
        for i, (y, u, v) in enumerate(_BARS):
            x0, x1 = i * bar_w, width if i == len(_BARS) - 1 else (i + 1) * bar_w
            self._y[:, x0:x1], self._u[:, x0 // 2 : x1 // 2], self._v[:, x0 // 2 : x1 // 2] = y, u, v
        # a luma ramp across the lower third shows scaling and compression artefacts
        ramp = np.linspace(16, 235, width).astype(np.uint8)
        self._y[height * 2 // 3 :, :] = ramp
        self._u[height // 3 :, :], self._v[height // 3 :, :] = 128, 128

    def _text(
        self,
        planes: tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint8]],
        text: str,
        x: int,
        top: int,
        scale: int,
    ) -> None:
        """White text on a black box (neutral chroma, so it reads on any colour bar)."""
        y, u, v = planes
        for i, char in enumerate(text):
            key = (char, scale)
            glyph = self._glyphs.get(key)
            if glyph is None:
                glyph = self._glyphs[key] = _glyph(char, scale)
            x0 = x + i * 6 * scale
            h, w = glyph.shape
            if x0 + w > self.width or top + h > self.height:
                return
            region = y[top : top + h, x0 : x0 + w + scale]
            region[:] = _BLACK
            region[:, :w][glyph] = _WHITE
            u[top // 2 : (top + h + 1) // 2, x0 // 2 : (x0 + w + scale + 1) // 2] = 128
            v[top // 2 : (top + h + 1) // 2, x0 // 2 : (x0 + w + scale + 1) // 2] = 128

    def render(self, n: int, now: float | None = None) -> bytes:
        y, u, v = self._y.copy(), self._u.copy(), self._v.copy()
        b = self.block
        # the frame number: 16 bits, then their complement
        value = n % (1 << BITS)
        bits = [(value >> (BITS - 1 - i)) & 1 for i in range(BITS)]
        for i, bit in enumerate(bits + [1 - x for x in bits]):
            y[0:b, i * b : (i + 1) * b] = _WHITE if bit else _BLACK
            u[0 : b // 2, i * b // 2 : (i + 1) * b // 2] = 128
            v[0 : b // 2, i * b // 2 : (i + 1) * b // 2] = 128
        # a box that moves one block per frame (motion for the encoder)
        side = max(8, self.height // 8) // 2 * 2
        span = max(1, self.width - side)
        x = (n * 4) % (2 * span)
        x = x if x < span else 2 * span - x
        top = self.height // 2 - side // 2
        y[top : top + side, x : x + side] = 200
        u[top // 2 : (top + side) // 2, x // 2 : (x + side) // 2] = 60
        v[top // 2 : (top + side) // 2, x // 2 : (x + side) // 2] = 200
        # human-readable text: counter, clock, label
        scale = max(1, self.height // 120)
        stamp = time.time() if now is None else now
        clock = time.strftime("%H:%M:%S", time.gmtime(stamp)) + f".{int(stamp * 1000) % 1000:03d}"
        line = 9 * scale
        self._text((y, u, v), f"FRAME {n}", b, b + line // 2, scale * 2)
        self._text((y, u, v), clock, b, b + line * 3, scale * 2)
        self._text((y, u, v), self.label, b, b + line * 5 + line // 2, scale)
        return y.tobytes() + u.tobytes() + v.tobytes()


def read_frame_number(luma: NDArray[np.uint8]) -> int | None:
    """Read `n mod 65536` back from a frame's luma plane (any size); None if unreadable."""
    width = luma.shape[1]
    block = width / BLOCKS_PER_WIDTH
    if block < 2:
        return None
    r = max(1, int(block / 4))
    cy = int(block / 2)
    values = []
    for i in range(2 * BITS):
        cx = int(i * block + block / 2)
        patch = luma[max(0, cy - r) : cy + r + 1, max(0, cx - r) : cx + r + 1]
        values.append(1 if float(patch.mean()) > 125 else 0)
    data, check = values[:BITS], values[BITS:]
    if any(a == b for a, b in zip(data, check, strict=True)):
        return None
    return int("".join(map(str, data)), 2)
