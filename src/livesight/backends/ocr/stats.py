"""Frame statistics (pure numpy): brightness, dominant colours as names, change between frames.

All of it runs on the small copy of a frame (`image.decode_small`, longest side 128 px), so it is cheap
enough to compute for every frame of a segment.

Colour names come from a fixed rule on hue, saturation and value (HSV), not from a learned model:
    value < 0.18 → black; saturation < 0.18 → white (value > 0.85) or grey;
    otherwise by hue: red, orange (brown when dark), yellow (olive when dark), green, cyan, blue, purple,
    magenta; light low-saturation reds and magentas are pink.
The thresholds are table-tested in tests/backends/ocr/test_stats.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from livesight.backends.imaging import RGB, resize_rgb

Gray = npt.NDArray[np.float32]

PALETTE: tuple[str, ...] = (
    "black",
    "grey",
    "white",
    "red",
    "orange",
    "brown",
    "yellow",
    "olive",
    "green",
    "cyan",
    "blue",
    "purple",
    "magenta",
    "pink",
)
_INDEX = {name: i for i, name in enumerate(PALETTE)}

MIN_COLOUR_SHARE = 0.08  # a colour covering less of the frame is not worth naming
MAX_COLOURS = 3
BLANK_CONTRAST = 2.0  # luma standard deviation below this: the frame is one flat colour


def luma(rgb: RGB) -> Gray:
    """Rec. 601 luma (0-255) of an RGB array."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.asarray(rgb.astype(np.float32) @ weights, dtype=np.float32)


def name_pixels(rgb: RGB) -> npt.NDArray[np.intp]:
    """Palette index (into PALETTE) for every pixel of an (..., 3) RGB array."""
    px = rgb.reshape(-1, 3).astype(np.float32) / 255.0
    r, g, b = px[:, 0], px[:, 1], px[:, 2]
    high = px.max(axis=1)
    low = px.min(axis=1)
    spread = high - low
    v = high
    s = np.where(high > 0, spread / np.where(high > 0, high, 1.0), 0.0)
    safe = np.where(spread > 0, spread, 1.0)
    hue = np.where(
        high == r,
        ((g - b) / safe) % 6.0,
        np.where(high == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
    )
    h = hue * 60.0  # degrees, 0 ≤ h < 360

    idx = np.full(h.shape, _INDEX["red"], dtype=np.intp)
    bands = [
        (15.0, 45.0, "orange"),
        (45.0, 70.0, "yellow"),
        (70.0, 165.0, "green"),
        (165.0, 195.0, "cyan"),
        (195.0, 255.0, "blue"),
        (255.0, 290.0, "purple"),
        (290.0, 340.0, "magenta"),
    ]
    for start, stop, name in bands:
        idx[(h >= start) & (h < stop)] = _INDEX[name]
    idx[(idx == _INDEX["orange"]) & (v < 0.65)] = _INDEX["brown"]
    idx[(idx == _INDEX["yellow"]) & (v < 0.55)] = _INDEX["olive"]
    light_red = (idx == _INDEX["red"]) & (s < 0.5) & (v > 0.7)
    light_magenta = (idx == _INDEX["magenta"]) & (s < 0.7)
    idx[light_red | light_magenta] = _INDEX["pink"]
    grey = s < 0.18
    idx[grey] = np.where(v[grey] > 0.85, _INDEX["white"], _INDEX["grey"])
    idx[v < 0.18] = _INDEX["black"]
    return idx.reshape(rgb.shape[:-1])


def colour_name(r: int, g: int, b: int) -> str:
    """The palette name of one colour (the same rule `name_pixels` applies to every pixel)."""
    return PALETTE[int(name_pixels(np.array([[r, g, b]], dtype=np.uint8))[0])]


def dominant_colours(
    rgb: RGB, *, min_share: float = MIN_COLOUR_SHARE, top: int = MAX_COLOURS
) -> tuple[tuple[str, float], ...]:
    """The most common colour names with their share of the pixels, largest first (ties by palette order)."""
    counts = np.bincount(name_pixels(rgb).ravel(), minlength=len(PALETTE))
    total = int(counts.sum())
    if total == 0:
        return ()
    order = sorted(range(len(PALETTE)), key=lambda i: (-int(counts[i]), i))
    found = [(PALETTE[i], int(counts[i]) / total) for i in order if counts[i] / total >= min_share]
    return tuple(found[:top])


@dataclass(frozen=True, slots=True)
class FrameStats:
    width: int
    height: int
    brightness: float  # mean luma, 0-255
    contrast: float  # luma standard deviation
    colours: tuple[tuple[str, float], ...]

    @property
    def blank(self) -> bool:
        return self.contrast < BLANK_CONTRAST


def frame_stats(small: RGB, size: tuple[int, int]) -> FrameStats:
    """Statistics of one frame from its small copy; `size` is the full (width, height)."""
    y = luma(small)
    return FrameStats(
        width=size[0],
        height=size[1],
        brightness=float(y.mean()),
        contrast=float(y.std()),
        colours=dominant_colours(small),
    )


def brightness_word(mean_luma: float) -> str:
    if mean_luma < 30:
        return "very dark"
    if mean_luma < 80:
        return "dark"
    if mean_luma < 170:
        return "moderately bright"
    if mean_luma < 220:
        return "bright"
    return "very bright"


def _difference(a: RGB, b: RGB) -> npt.NDArray[np.float32]:
    """Per-pixel mean absolute difference over the three channels (0-255), b resized to a's shape."""
    b = resize_rgb(b, (a.shape[0], a.shape[1]))
    return np.asarray(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=-1), dtype=np.float32)


def change_percent(a: RGB, b: RGB) -> float:
    """How much two frames differ: mean absolute difference over pixels and RGB channels, in % of full scale.

    Colour rather than grayscale: a red object moving over a blue background changes luma very little
    (both ≈ 85) but changes the colour channels a lot.
    """
    if a.size == 0:
        return 0.0
    return float(_difference(a, b).mean()) / 255.0 * 100.0


def change_centre(a: RGB, b: RGB) -> tuple[float, float]:
    """Centre (x, y in 0..1) of the cell of a 3×3 grid where two frames differ most."""
    diff = _difference(a, b)
    rows, cols = diff.shape
    best = (-1.0, 0.5, 0.5)
    for i in range(3):
        for j in range(3):
            cell = diff[i * rows // 3 : (i + 1) * rows // 3, j * cols // 3 : (j + 1) * cols // 3]
            if cell.size and float(cell.mean()) > best[0]:
                best = (float(cell.mean()), (j + 0.5) / 3, (i + 0.5) / 3)
    return best[1], best[2]


def change_word(percent: float) -> str:
    if percent < 0.5:
        return "almost nothing"
    if percent < 2.0:
        return "a little"
    if percent < 8.0:
        return "a moderate amount"
    return "a lot"
