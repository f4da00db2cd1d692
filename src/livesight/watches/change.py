"""The cheap pixel check behind `min_change`: how much of the picture differs from the last one used.

Each frame is decoded at reduced size (JPEG DCT scaling: Pillow's draft mode), to 64×36 grey; the change
is the fraction of those pixels whose grey level moved by more than 24 of 255. Runs off the event loop.
"""

from __future__ import annotations

import io

import numpy as np
from numpy.typing import NDArray
from PIL import Image

SIZE = (64, 36)
THRESHOLD = 24

Thumb = NDArray[np.int16]


def thumbnail(jpeg: bytes) -> Thumb:
    with Image.open(io.BytesIO(jpeg)) as image:
        image.draft("L", (SIZE[0] * 2, SIZE[1] * 2))
        grey = image.convert("L").resize(SIZE, Image.Resampling.BILINEAR)
        return np.asarray(grey, dtype=np.int16)


def changed_fraction(before: Thumb, after: Thumb) -> float:
    return float(np.count_nonzero(np.abs(after - before) > THRESHOLD)) / after.size
