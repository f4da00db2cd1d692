from __future__ import annotations

import pytest

from livesight.backends.ocr import OcrModel
from livesight.backends.ocr.reader import TextReader


@pytest.fixture(scope="session")
def reader() -> TextReader:
    """The real rapidocr reader, loaded once per test session (from its wheel; about 1-3 s)."""
    loaded = TextReader()
    loaded.load()
    return loaded


@pytest.fixture(scope="session")
def ocr(reader: TextReader) -> OcrModel:
    """The real model over the session's reader."""
    return OcrModel(reader=reader)
