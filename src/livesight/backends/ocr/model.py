"""`OcrModel`: the built-in offline model `livesight/ocr`.

For each media item it decodes a small copy of every frame (statistics, change between consecutive
frames), reads text with rapidocr in at most `max_ocr_frames` frames per segment spread evenly over it
(and at most `max_ocr_frames_per_request` in all), then composes plain sentences (`compose.py`).

Bounds and guarantees:
- `answer` never raises for odd input (no media, tiny, blank, corrupt or huge images): it says what it
  could not do in words. It raises only `ModelUnavailable` when rapidocr itself cannot be loaded.
- Deterministic: the same pixels and question give the same answer (no randomness, no clocks).
- Thread-safe: inference is serialised inside `TextReader`; decoding and statistics run in the caller's
  thread. Text read from identical JPEG bytes is cached (LRU, keyed by SHA-256), so repeated questions
  about the same frames (the latest frame, then the last 5 s) pay for OCR once.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from livesight.backends.imaging import RGB, decode_rgb, decode_small
from livesight.backends.ocr import stats as st
from livesight.backends.ocr.compose import compose
from livesight.backends.ocr.facts import Change, FrameFacts, ItemFacts
from livesight.backends.ocr.reader import TextLine, TextReader
from livesight.core.errors import ImageUndecodable, ModelFailed, ModelUnavailable
from livesight.core.media import MediaFrame, MediaItem

log = logging.getLogger("livesight.backends.ocr")

MIN_OCR_SIDE = 8  # pixels; smaller frames cannot hold readable text
OCR_MAX_SIDE = 2048  # larger frames are scaled down before OCR (rapidocr would do it anyway, after a full decode)


def spread(positions: Sequence[int], count: int) -> tuple[int, ...]:
    """`count` of `positions` spread evenly, always including the newest; all of them if count ≥ len."""
    n = len(positions)
    if count <= 0 or n == 0:
        return ()
    if count >= n:
        return tuple(positions)
    if count == 1:
        return (positions[-1],)
    return tuple(positions[round(i * (n - 1) / (count - 1))] for i in range(count))


@dataclass(frozen=True, slots=True)
class _Decoded:
    facts: FrameFacts
    pixels: RGB | None  # the small copy, for change between frames


class OcrModel:
    """Reads text and measures simple statistics in frames; answers in plain sentences."""

    def __init__(
        self,
        min_score: float = 0.9,
        *,
        max_ocr_frames: int = 6,
        max_ocr_frames_per_request: int = 12,
        cache_size: int = 128,
        model_dir: Path | None = None,
        threads: int | None = None,
        reader: TextReader | None = None,
    ) -> None:
        self._reader = reader or TextReader(min_score, model_dir=model_dir, threads=threads)
        self.max_ocr_frames = max(1, max_ocr_frames)
        self.max_ocr_frames_per_request = max(1, max_ocr_frames_per_request)
        self._cache: OrderedDict[bytes, tuple[TextLine, ...]] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._reader.loaded

    def load(self) -> None:
        """Load rapidocr from the weights in its wheel (no download). Blocking, idempotent, thread-safe.
        Raises ModelUnavailable with the reason and the fix."""
        self._reader.load()

    def answer(self, question: str, media: Sequence[MediaItem]) -> str:
        """Blocking CPU work: call it in an executor."""
        self.load()
        question = question if isinstance(question, str) else ""
        try:
            items = self._observe(list(media or ()))
            return compose(question, items)
        except ModelUnavailable:
            raise
        except Exception:  # a bug must not become a stack trace for the caller
            log.exception("livesight/ocr failed to answer")
            return (
                "I could not process the attached media because of an internal error in livesight/ocr; "
                "the details are in the server log."
            )

    # --- observation -------------------------------------------------------------------------------

    def _observe(self, media: list[MediaItem]) -> list[ItemFacts]:
        budget = self.max_ocr_frames_per_request
        items: list[ItemFacts] = []
        for k, item in enumerate(media):
            decoded = [self._decode(p, frame) for p, frame in enumerate(item.frames)]
            usable = [d.facts.position for d in decoded if d.facts.stats is not None]
            share = math.ceil(budget / (len(media) - k)) if budget > 0 else 0
            allot = min(self.max_ocr_frames, share)
            chosen = spread(usable, allot)
            budget -= len(chosen)
            note = None
            if len(chosen) < len(usable):
                note = (
                    f"at most {self.max_ocr_frames} per segment"
                    if allot == self.max_ocr_frames
                    else f"this request may have text read in at most {self.max_ocr_frames_per_request} frames in all"
                )
            facts = [d.facts for d in decoded]
            for position in chosen:
                facts[position] = self._read(item.frames[position], facts[position])
            if item.kind == "image" and usable and not chosen:
                facts[usable[0]] = replace(
                    facts[usable[0]],
                    read_problem=f"this request already had text read in {self.max_ocr_frames_per_request} frames, "
                    "the most one request may",
                )
            kind = item.kind if item.kind in ("image", "video") else "image"
            items.append(
                ItemFacts(
                    kind=kind,
                    frames=tuple(facts),
                    changes=_changes(decoded),
                    chosen=chosen,
                    ocr_limit=note,
                )
            )
        return items

    def _decode(self, position: int, frame: MediaFrame) -> _Decoded:
        base = FrameFacts(
            position=position,
            index=frame.index,
            timestamp_ms=frame.timestamp_ms,
            arrived_at_ms=frame.arrived_at_ms,
        )
        try:
            small, size = decode_small(bytes(frame.jpeg))
        except ImageUndecodable as exc:
            return _Decoded(replace(base, problem=exc.message), None)
        return _Decoded(replace(base, stats=st.frame_stats(small, size)), small)

    def _read(self, frame: MediaFrame, facts: FrameFacts) -> FrameFacts:
        stats = facts.stats
        assert stats is not None
        if min(stats.width, stats.height) < MIN_OCR_SIDE:
            return replace(facts, read_problem=f"it is too small to hold readable text ({stats.width}×{stats.height})")
        data = bytes(frame.jpeg)
        key = hashlib.sha256(data).digest()
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return replace(facts, lines=cached)
        try:
            rgb = decode_rgb(data, max_side=OCR_MAX_SIDE)
            lines = self._reader.read(rgb)
        except ImageUndecodable as exc:
            return replace(facts, read_problem=exc.message)
        except ModelFailed as exc:
            return replace(facts, read_problem=exc.message)
        height, width = rgb.shape[:2]
        if (width, height) != (stats.width, stats.height):
            lines = tuple(_rescale(line, stats.width / width, stats.height / height) for line in lines)
        with self._cache_lock:
            self._cache[key] = lines
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return replace(facts, lines=lines)


def _rescale(line: TextLine, sx: float, sy: float) -> TextLine:
    x0, y0, x1, y1 = line.box
    box = (round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy))
    return TextLine(text=line.text, score=line.score, box=box)


def _changes(decoded: list[_Decoded]) -> tuple[Change, ...]:
    frames = [(d.facts.position, d.pixels) for d in decoded if d.pixels is not None]
    return tuple(
        Change(
            before=before,
            after=after,
            percent=st.change_percent(small_before, small_after),
            centre=st.change_centre(small_before, small_after),
        )
        for (before, small_before), (after, small_after) in itertools.pairwise(frames)
    )
