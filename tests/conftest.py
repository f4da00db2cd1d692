from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from livesight.core.clock import FakeClock
from tests.support.media_env import require_browser, require_namespace
from tests.support.server import LiveServer, run_server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(tmp_path: Path, clock: FakeClock) -> Iterator[LiveServer]:
    with run_server(tmp_path, clock=clock) as live:
        yield live


@pytest.fixture(autouse=True)
def _media_environment(request: pytest.FixtureRequest) -> None:
    """Tests marked `webrtc` need the private network namespace; `browser` also chromium and livekit-client."""
    if request.node.get_closest_marker("browser"):
        require_browser()
    elif request.node.get_closest_marker("webrtc"):
        require_namespace()


@pytest.fixture(scope="session")
def tiny_vlm_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny random-weight VLMs (tests/support/tiny_vlm.py), built once per session, each in the directory a
    pulled repo would have under a WeightStore root: `tiny--idefics3` (with its ONNX export under `onnx/`, as
    the hub's SmolVLM repositories have: tests/support/onnx_export.py), `tiny--qwen2-vl`."""
    pytest.importorskip("torch")
    from tests.support.onnx_export import export_smolvlm
    from tests.support.tiny_vlm import build_idefics3, build_qwen2vl

    root = tmp_path_factory.mktemp("weights")
    export_smolvlm(build_idefics3(root / "tiny--idefics3"))
    build_qwen2vl(root / "tiny--qwen2-vl")
    return root
