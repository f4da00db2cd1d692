"""Synthetic frames with known text, clocks, colours and shapes (Pillow), and media items around them."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

from livesight.core.media import MediaFrame, MediaItem

Colour = tuple[int, int, int]
BLUE: Colour = (40, 90, 160)
RED: Colour = (230, 40, 40)
WHITE: Colour = (250, 250, 250)
BLACK: Colour = (0, 0, 0)
EPOCH_MS = 1_764_024_600_000  # 2025-11-24 22:50:00 UTC


@dataclass(frozen=True)
class Text:
    text: str
    x: int
    y: int
    size: int = 40
    colour: Colour = WHITE
    plate: Colour | None = None  # draw the text on a filled box of this colour


@dataclass(frozen=True)
class Scene:
    width: int = 1280
    height: int = 720
    background: Colour = BLUE
    texts: Sequence[Text] = ()
    discs: Sequence[tuple[int, int, int, Colour]] = field(default_factory=tuple)  # x, y, radius, colour


def draw(scene: Scene) -> Image.Image:
    image = Image.new("RGB", (scene.width, scene.height), scene.background)
    pen = ImageDraw.Draw(image)
    for x, y, radius, colour in scene.discs:
        pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    for t in scene.texts:
        font = ImageFont.load_default(size=t.size)
        if t.plate is not None:
            left, top, right, bottom = pen.textbbox((t.x, t.y), t.text, font=font)
            pad = t.size // 3
            pen.rectangle((left - pad, top - pad, right + pad, bottom + pad), fill=t.plate)
        pen.text((t.x, t.y), t.text, fill=t.colour, font=font)
    return image


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def frame(scene: Scene, *, index: int | None = None, timestamp_ms: int | None = None) -> MediaFrame:
    return MediaFrame(
        jpeg=jpeg(draw(scene)),
        width=scene.width,
        height=scene.height,
        index=index,
        timestamp_ms=timestamp_ms,
        arrived_at_ms=None if timestamp_ms is None else EPOCH_MS + timestamp_ms,
    )


def raw_frame(data: bytes, width: int = 640, height: int = 480, index: int | None = None) -> MediaFrame:
    return MediaFrame(jpeg=data, width=width, height=height, index=index)


def image_item(f: MediaFrame) -> MediaItem:
    return MediaItem(kind="image", url="ovs://streams/test?frame_index=-1", frames=(f,), stream_id="test")


def segment_item(frames: Sequence[MediaFrame]) -> MediaItem:
    return MediaItem(
        kind="video",
        url="ovs://streams/test?start_offset_ms=-5000",
        frames=tuple(frames),
        stream_id="test",
        max_fps=1.0,
    )


def sign(text: str = "LOADING DOCK B", *, background: Colour = BLUE) -> Scene:
    """A 1280×720 frame with a large sign in the centre, black on a white plate."""
    return Scene(background=background, texts=(Text(text, 420, 330, size=56, colour=BLACK, plate=WHITE),))


def clock_scene(seconds: int, *, disc_x: int = 200, width: int = 1280, height: int = 720) -> Scene:
    """The demo's kind of frame: a sign, a ticking clock at the bottom right, a red disc moving right."""
    clock = f"12:00:{seconds % 60:02d}"
    return Scene(
        width=width,
        height=height,
        texts=(
            Text("LOADING DOCK B", width // 3, height // 2 - 30, size=height // 13, colour=BLACK, plate=WHITE),
            Text(clock, width - width // 4, height - height // 9, size=height // 18),
        ),
        discs=((disc_x, height // 4, height // 8, RED),),
    )


def clock_segment(count: int, *, start_index: int = 300, step_ms: int = 1000, moving: bool = True) -> MediaItem:
    frames = [
        frame(
            clock_scene(i, disc_x=150 + (i * 900 // max(1, count - 1) if moving else 0)),
            index=start_index + 30 * i,
            timestamp_ms=10_000 + step_ms * i,
        )
        for i in range(count)
    ]
    return segment_item(frames)
