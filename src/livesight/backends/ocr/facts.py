"""What the model observed in one media item: the inputs of answer composition (plain data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from livesight.backends.ocr.reader import TextLine
from livesight.backends.ocr.stats import FrameStats


@dataclass(frozen=True, slots=True)
class FrameFacts:
    position: int  # 0-based position within its item
    index: int | None = None  # lifetime frame_index (None for inline images)
    timestamp_ms: int | None = None  # stream-clock time
    arrived_at_ms: int | None = None  # wall-clock arrival
    stats: FrameStats | None = None  # None when the frame could not be decoded
    problem: str | None = None  # why it could not be decoded
    lines: tuple[TextLine, ...] | None = None  # None when text was not read
    read_problem: str | None = None  # why text could not be read although this frame was chosen

    @property
    def decoded(self) -> bool:
        return self.stats is not None

    @property
    def read(self) -> bool:
        return self.lines is not None


@dataclass(frozen=True, slots=True)
class Change:
    """How much the picture changed from frame `before` to frame `after` (positions in the item)."""

    before: int
    after: int
    percent: float  # mean absolute RGB difference of the small copies, % of full scale
    centre: tuple[float, float]  # where it changed most (x, y as fractions)


@dataclass(frozen=True, slots=True)
class ItemFacts:
    kind: Literal["image", "video"]
    frames: tuple[FrameFacts, ...]
    changes: tuple[Change, ...] = ()
    chosen: tuple[int, ...] = ()  # positions chosen for OCR
    ocr_limit: str | None = None  # why fewer frames were read than decoded, e.g. "at most 6 per segment"
