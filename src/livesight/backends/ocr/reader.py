"""The rapidocr adapter: the only module that imports rapidocr (and, through it, onnxruntime and OpenCV).

Offline by construction: rapidocr 3.10's wheel ships its three ONNX models (PP-OCRv6 small detector and
recogniser, PP-OCR v2 mobile direction classifier) in `rapidocr/models/`. Given no `model_path` it would
check, and if missing download, the files from the internet; we always pass explicit paths, so its download
code is never reached, and a missing file is a clear `ModelUnavailable` naming the file and the fix.

Concurrency: one inference at a time per reader (a lock). rapidocr's `__call__` writes call options into
shared state, and onnxruntime already spreads one inference over every core, so parallel calls would only
contend. Callers queue on the lock; decoding and statistics happen outside it.

Every exception from rapidocr, onnxruntime or OpenCV is translated here: `ModelUnavailable` from `load`,
`ModelFailed` from `read` (details go to the log, not to the caller).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from livesight.backends.imaging import RGB
from livesight.core.errors import ModelFailed, ModelUnavailable

if TYPE_CHECKING:  # imported when the model loads (it pulls in onnxruntime and OpenCV)
    from rapidocr import RapidOCR

log = logging.getLogger("livesight.backends.ocr")

RAPIDOCR_VERSION = "3.10.0"
WEIGHTS = {
    "Det": "PP-OCRv6_det_small.onnx",
    "Rec": "PP-OCRv6_rec_small.onnx",
    "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
}
SELF_TEST_TEXT = "LIVESIGHT 42"
# Shapes are mistaken for single letters: plain discs read as "O" with scores 0.50-0.83 in our tests.
SINGLE_GLYPH_SCORE = 0.97
DET_MAX_SIDE = 960  # see docs/ocr-model.md: faster than rapidocr's default, misses text under ~10 px high
_REINSTALL = f"reinstall it with `pip install --force-reinstall rapidocr=={RAPIDOCR_VERSION} onnxruntime`"


@dataclass(frozen=True, slots=True)
class TextLine:
    """One line of text as read: the text, the recogniser's score (0-1) and its box in frame pixels."""

    text: str
    score: float
    box: tuple[int, int, int, int]  # x0, y0, x1, y1

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    def centre(self, width: int, height: int) -> tuple[float, float]:
        """Box centre as fractions (0..1) of the frame's width and height."""
        x = (self.box[0] + self.box[2]) / 2 / max(1, width)
        y = (self.box[1] + self.box[3]) / 2 / max(1, height)
        return min(1.0, max(0.0, x)), min(1.0, max(0.0, y))


def default_model_dir() -> Path:
    """`rapidocr/models/` inside the installed wheel (found without importing rapidocr)."""
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or spec.origin is None:
        raise ModelUnavailable(
            f"livesight/ocr needs the rapidocr package, which is not installed: "
            f"`pip install rapidocr=={RAPIDOCR_VERSION} onnxruntime`"
        )
    return Path(spec.origin).parent / "models"


def _has_text(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


class TextReader:
    """Reads lines of text in an RGB frame with rapidocr, keeping lines with score ≥ min_score."""

    def __init__(
        self,
        min_score: float = 0.9,
        *,
        model_dir: Path | None = None,
        det_limit: tuple[Literal["max", "min"], int] = ("max", DET_MAX_SIDE),
        threads: int | None = None,
    ) -> None:
        self.min_score = min_score
        self._threads = threads  # onnxruntime intra-op threads; None: one per core
        self._model_dir = model_dir
        self._det_limit = det_limit  # ("min", 736) is rapidocr's own default
        self._engine: RapidOCR | None = None
        self._load_lock = threading.Lock()
        self._infer_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    def load(self) -> None:
        """Load the three ONNX models from the wheel and read a drawn test line. Idempotent, thread-safe."""
        self._loaded_engine()

    def _loaded_engine(self) -> RapidOCR:
        if self._engine is not None:
            return self._engine
        with self._load_lock:
            if self._engine is not None:
                return self._engine
            engine = self._build()
            self._self_test(engine)
            self._engine = engine
            return engine

    def _build(self) -> RapidOCR:
        model_dir = self._model_dir or default_model_dir()
        paths = {part: model_dir / name for part, name in WEIGHTS.items()}
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            raise ModelUnavailable(
                f"livesight/ocr cannot load: rapidocr's bundled weights are missing ({', '.join(missing)}); "
                f"nothing is downloaded at run time, so {_REINSTALL}"
            )
        params: dict[str, str | float] = {
            "Global.log_level": "error",  # it logs a warning for every frame without text
            "Global.text_score": min(0.5, self.min_score),  # to_lines applies min_score
            # The detector sees the frame scaled so its longest side is at most DET_MAX_SIDE. rapidocr's
            # default (shortest side scaled up to 736) costs ~1.9x more on 720p and ~8x on 320x180 frames.
            "Det.limit_type": self._det_limit[0],
            "Det.limit_side_len": self._det_limit[1],
            **{f"{part}.model_path": str(path) for part, path in paths.items()},
        }
        if self._threads is not None:
            params["EngineConfig.onnxruntime.intra_op_num_threads"] = self._threads
        try:
            from rapidocr import RapidOCR

            return RapidOCR(params=params)
        except ImportError as exc:
            raise ModelUnavailable(
                f"livesight/ocr cannot import rapidocr or onnxruntime ({exc}); {_REINSTALL}"
            ) from exc
        except Exception as exc:
            log.exception("rapidocr failed to load")
            raise ModelUnavailable(
                f"livesight/ocr failed to load rapidocr ({type(exc).__name__}); {_REINSTALL}"
            ) from exc

    def _self_test(self, engine: RapidOCR) -> None:
        """Warm up (rapidocr loads its models on first use) and prove the weights read a known line."""
        image = Image.new("RGB", (360, 80), (255, 255, 255))
        ImageDraw.Draw(image).text((16, 16), SELF_TEST_TEXT, fill=(0, 0, 0), font=ImageFont.load_default(size=40))
        try:
            lines = self._run(engine, np.asarray(image, dtype=np.uint8))
        except ModelFailed as exc:
            raise ModelUnavailable(
                f"livesight/ocr could not run rapidocr (are its weights in {self._model_dir or default_model_dir()} "
                f"corrupt?); {_REINSTALL}"
            ) from exc
        read = " ".join(line.text for line in lines)
        if "LIVESIGHT" not in read.replace(" ", "").upper():
            raise ModelUnavailable(
                f"livesight/ocr loaded rapidocr but its self-test read {read!r} instead of {SELF_TEST_TEXT!r}; "
                f"{_REINSTALL}"
            )

    def read(self, rgb: RGB) -> tuple[TextLine, ...]:
        """Lines of text in an H×W×3 RGB frame, top to bottom then left to right. Raises ModelFailed."""
        return self._run(self._loaded_engine(), rgb)

    def _run(self, engine: RapidOCR, rgb: RGB) -> tuple[TextLine, ...]:
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        height, width = rgb.shape[:2]
        try:
            from rapidocr.utils.output import RapidOCROutput  # loaded with the engine

            with self._infer_lock:
                result = engine(bgr)
            if not isinstance(result, RapidOCROutput):  # det, cls and rec all run: never a partial output
                raise TypeError(f"rapidocr answered a {type(result).__name__}, not a RapidOCROutput")
            txts = tuple(result.txts or ())
            scores = tuple(result.scores or ())
            boxes = np.asarray(result.boxes if result.boxes is not None else np.zeros((0, 4, 2)), dtype=np.float64)
        except Exception as exc:
            log.warning("rapidocr failed on a %dx%d frame: %s: %s", width, height, type(exc).__name__, exc)
            raise ModelFailed("the OCR engine failed on this frame") from exc
        return to_lines(zip(txts, scores, boxes, strict=False), width, height, self.min_score)


def to_lines(
    raw: Iterable[tuple[str, float, npt.ArrayLike]], width: int, height: int, min_score: float
) -> tuple[TextLine, ...]:
    """rapidocr's (text, score, 4-point quad) results as TextLines: whitespace collapsed, scores below
    min_score, lines without a letter or digit (a lone '●') and single characters below
    SINGLE_GLYPH_SCORE dropped, boxes clamped to the frame, sorted top to bottom then left to right."""
    lines: list[TextLine] = []
    for text, score, quad in raw:
        clean = " ".join(str(text).split())
        if not float(score) >= min_score or not _has_text(clean):
            continue
        if len(clean) == 1 and not float(score) >= max(min_score, SINGLE_GLYPH_SCORE):
            continue
        points = np.asarray(quad, dtype=np.float64).reshape(-1, 2)
        xs, ys = points[:, 0], points[:, 1]
        box = (
            int(min(width, max(0, np.floor(xs.min())))),
            int(min(height, max(0, np.floor(ys.min())))),
            int(min(width, max(0, np.ceil(xs.max())))),
            int(min(height, max(0, np.ceil(ys.max())))),
        )
        lines.append(TextLine(text=clean, score=float(score), box=box))
    lines.sort(key=lambda ln: (ln.box[1], ln.box[0], ln.text))
    return tuple(lines)
