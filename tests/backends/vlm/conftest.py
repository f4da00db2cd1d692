"""Tiny random-weight models (tests/support/tiny_vlm.py), built once per session into a temp WeightStore root,
each under the name a pulled repo would have (`org--name`)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("llguidance")

from tests.support.tiny_vlm import build_idefics3, build_qwen2vl

IDEFICS3 = "tiny/idefics3"
QWEN2VL = "tiny/qwen2-vl"


@pytest.fixture(scope="session")
def weights_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("weights")
    build_idefics3(root / IDEFICS3.replace("/", "--"))
    build_qwen2vl(root / QWEN2VL.replace("/", "--"))
    return root
