"""A synthetic video: colour bars, a moving box, a frame counter, a clock, a label, and the frame
number encoded in the pixels so it can be read back from a decoded (even scaled, lossy) frame.

Frames are I420 (what encoders take, 1.5 bytes per pixel). The number is a row of 32 blocks at the
top: 16 bits of `n mod 65536`, most significant first, then their complement as a check, each block
`width / 40` pixels wide. `read_frame_number` samples the block centres of a luma plane and returns
None when the check fails, so a damaged frame is never misread.

The text ("FRAME <n>", a UTC clock, the label) is drawn for the built-in model `livesight/ocr` to read
exactly: Pillow's bundled font (Aileron, so it is the same everywhere), white on a black box with a margin,
about 32 px high in the detector's view, words 0.3 em apart (a plain space was often dropped: "FRAME7").
Measured with `python -m bench.pattern_ocr`: 60 of 60 frame numbers read exactly at 1280×720, 640×360 and
1920×1080 through the server's JPEG, and after VP8 at 0.15-1.7 Mbit/s (the old 5×7 bitmap font read as
"FRHME 1141", below the 0.9 cut). `tests/backends/ocr/test_pattern_ocr.py` keeps it true.
"""

from __future__ import annotations

import time

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

BITS = 16
BLOCKS_PER_WIDTH = 40
_WHITE, _BLACK = 235, 16
# Text size, measured with livesight/ocr (see docs/ingest.md, "The test pattern"): its detector sees a frame
# scaled to 960 px on the longest side, and reads this font best at about 32 px there.
OCR_SIDE, OCR_TEXT_PX = 960, 32
LABEL_SCALE = 0.7  # the label is smaller than the counter and the clock
WORD_GAP = 0.3  # of the font size, between words (measured best of 0.25-0.75; wider gaps read as "FRAME7")

# Colour bars (Y, U, V): white, yellow, cyan, green, magenta, red, blue, black (BT.601, limited range).
_BARS = [(235, 128, 128), (210, 16, 146), (170, 166, 16), (145, 54, 34), (106, 202, 222), (81, 90, 240),
         (41, 240, 110), (16, 128, 128)]  # fmt: skip


class TestPattern:
    """Renders frame `n` of a width x height pattern as I420 bytes."""

    __test__ = False  # not a pytest class

    def __init__(self, width: int, height: int, label: str = "LIVESIGHT TEST PATTERN") -> None:
        if width % 2 or height % 2 or width < 160 or height < 90:
            raise ValueError("the test pattern needs an even size of at least 160x90")
        self.width, self.height, self.label = width, height, label
        self.block = width // BLOCKS_PER_WIDTH
        self._fonts: dict[int, ImageFont.FreeTypeFont] = {}
        self._lines: dict[tuple[str, int], NDArray[np.uint8]] = {}
        scaled = round(OCR_TEXT_PX * max(1.0, max(width, height) / OCR_SIDE))
        self.text_size = max(10, min(height // 8, scaled))
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

    def _font(self, size: int) -> ImageFont.FreeTypeFont:
        font = self._fonts.get(size)
        if font is None:
            loaded = ImageFont.load_default(size=size)
            if not isinstance(loaded, ImageFont.FreeTypeFont):  # Pillow built without FreeType
                raise RuntimeError("the test pattern needs Pillow with FreeType (any Pillow wheel has it)")
            font = self._fonts[size] = loaded
        return font

    def _line(self, text: str, size: int) -> NDArray[np.uint8]:
        """The luma of one line of white text on its black box, with a margin of `size / 3` on every side
        and `WORD_GAP` between words. Lines are cached, bounded: the label and the "FRAME" word repeat."""
        key = (text, size)
        cached = self._lines.get(key)
        if cached is not None:
            return cached
        font = self._font(size)
        ascent, descent = font.getmetrics()
        pad, gap = max(2, size // 3), size * WORD_GAP
        words = text.split(" ")
        width = sum(float(font.getlength(word)) for word in words) + gap * (len(words) - 1)
        canvas = Image.new("L", ((round(width) + 2 * pad + 1) // 2 * 2, (ascent + descent + 2 * pad + 1) // 2 * 2))
        draw = ImageDraw.Draw(canvas)
        cursor = float(pad)
        for word in words:
            draw.text((round(cursor), pad), word, fill=255, font=font)
            cursor += font.getlength(word) + gap
        alpha = np.asarray(canvas, dtype=np.uint16)
        line = (_BLACK + alpha * (_WHITE - _BLACK) // 255).astype(np.uint8)
        if len(self._lines) >= 64:
            self._lines.clear()
        self._lines[key] = line
        return line

    def _text(
        self,
        planes: tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint8]],
        text: str,
        x: int,
        top: int,
        size: int,
    ) -> int:
        """Draws `text` at (x, top), neutral chroma so it reads on any colour bar; returns the box's bottom."""
        y, u, v = planes
        line = self._line(text, size)
        x0, y0 = x // 2 * 2, top // 2 * 2
        x1, y1 = min(self.width, x0 + line.shape[1]), min(self.height, y0 + line.shape[0])
        if x1 <= x0 or y1 <= y0:
            return int(y0)
        y[y0:y1, x0:x1] = line[: y1 - y0, : x1 - x0]
        u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = 128
        v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = 128
        return int(y1)

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
        big = self.text_size
        stamp = time.time() if now is None else now
        clock = time.strftime("%H:%M:%S", time.gmtime(stamp)) + f".{int(stamp * 1000) % 1000:03d}"
        gap = max(2, big // 4)
        bottom = self._text((y, u, v), f"FRAME {n}", b, b + gap, big)
        bottom = self._text((y, u, v), clock, b, bottom + gap, big)
        self._text((y, u, v), self.label, b, bottom + gap, max(8, round(big * LABEL_SCALE)))
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
