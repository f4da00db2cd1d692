"""The in-process backend tests need the `vlm` extra; tiny models come from `tiny_vlm_root` (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("llguidance")

IDEFICS3 = "tiny/idefics3"
QWEN2VL = "tiny/qwen2-vl"


@pytest.fixture(scope="session")
def weights_root(tiny_vlm_root: Path) -> Path:
    return tiny_vlm_root
