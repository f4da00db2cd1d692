"""The demo clip: a generated scene with a sign, a running clock and moving objects.

It is what `livesight demo` publishes, so that the offline model has something real to read: the sign
text is static, the clock changes every second (wall-clock time, so answers can be checked against
your own clock), a ball bounces and a truck drives across (motion between frames). The static part is
drawn once; each frame composites the moving parts and converts to I420 with PyAV (swscale), off the
event loop.
"""

from __future__ import annotations

import math
import time

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from livesight.ingest.publisher import RenderedSource

DEFAULT_SIGN = "LOADING DOCK B"


class DemoClip(RenderedSource):
    render_off_loop = True  # ~6 ms of Pillow drawing and swscale a frame

    def __init__(self, width: int = 1280, height: int = 720, fps: float = 15.0, sign: str = DEFAULT_SIGN) -> None:
        if width % 2 or height % 2 or width < 320 or height < 180:
            raise ValueError("the demo clip needs an even size of at least 320x180")
        self.width, self.height, self.fps, self.sign = width, height, fps, sign
        self.description = f"demo clip {width}x{height}@{fps:g} (sign {sign!r}, a clock, moving objects)"
        self._unit = height / 720
        self._clock_font = ImageFont.load_default(size=round(64 * self._unit))
        self._background = self._draw_background()

    def _draw_background(self) -> Image.Image:
        w, h, u = self.width, self.height, self._unit
        img = Image.new("RGB", (w, h))
        # a wall: dark blue-grey gradient, and a floor
        top = np.linspace(70, 40, h * 2 // 3, dtype=np.float32)[:, None]
        wall = np.repeat(np.stack([top * 0.8, top * 0.9, top * 1.2], axis=-1), w, axis=1)
        img.paste(Image.fromarray(wall.clip(0, 255).astype(np.uint8)), (0, 0))
        draw = ImageDraw.Draw(img)
        draw.rectangle((0, h * 2 // 3, w, h), fill=(92, 88, 80))
        for x in range(0, w, round(160 * u)):  # floor markings
            draw.rectangle((x, round(h * 0.83), x + round(80 * u), round(h * 0.83) + round(8 * u)), fill=(230, 190, 40))
        # the sign: dark text on a bright yellow board
        font = ImageFont.load_default(size=round(84 * u))
        left, top_, right, bottom = draw.textbbox((0, 0), self.sign, font=font)
        pad = round(28 * u)
        x0 = (w - (right - left)) // 2 - pad
        y0 = round(70 * u)
        board = (x0, y0, x0 + (right - left) + 2 * pad, y0 + (bottom - top_) + 2 * pad)
        draw.rectangle(board, fill=(250, 210, 30), outline=(20, 20, 20), width=max(2, round(6 * u)))
        draw.text((x0 + pad - left, y0 + pad - top_), self.sign, font=font, fill=(15, 15, 15))
        return img

    def render(self, n: int, now: float) -> bytes:
        """Frame `n` (captured at wall time `now`) as I420 bytes."""
        w, h, u = self.width, self.height, self._unit
        img = self._background.copy()
        draw = ImageDraw.Draw(img)
        t = n / self.fps
        # the clock, top right, white on black
        text = time.strftime("%H:%M:%S", time.localtime(now))
        left, top, right, bottom = draw.textbbox((0, 0), text, font=self._clock_font)
        x = w - (right - left) - round(40 * u)
        y = h // 2 - round(40 * u)
        draw.rectangle((x - 16, y - 12, x + right - left + 16, y + bottom - top + 12), fill=(0, 0, 0))
        draw.text((x - left, y - top), text, font=self._clock_font, fill=(255, 255, 255))
        # a red ball bouncing on the floor
        r = round(36 * u)
        bx = round((w * 0.1) + (w * 0.35) * (0.5 + 0.5 * math.sin(t * 0.9)))
        by = round(h * 0.8 - abs(math.sin(t * 2.2)) * h * 0.25)
        draw.ellipse((bx - r, by - r, bx + r, by + r), fill=(220, 40, 40))
        # a truck driving across the floor, left to right, every 8 s
        tw, th = round(220 * u), round(110 * u)
        tx = round(((t % 8.0) / 8.0) * (w + tw)) - tw
        ty = round(h * 0.9) - th
        draw.rectangle((tx, ty, tx + tw, ty + th), fill=(40, 110, 220))
        draw.rectangle((tx + tw, ty + th // 3, tx + tw + round(60 * u), ty + th), fill=(30, 80, 170))
        for wx in (tx + round(40 * u), tx + tw):
            draw.ellipse((wx - 18 * u, ty + th - 18 * u, wx + 18 * u, ty + th + 18 * u), fill=(20, 20, 20))
        frame = av.VideoFrame.from_ndarray(np.asarray(img), format="rgb24").reformat(format="yuv420p")
        return bytes(frame.to_ndarray().tobytes())
