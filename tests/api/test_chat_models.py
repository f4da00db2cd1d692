"""GET /models reports `ready` only when the backend answers a health probe (CONTRACT §7)."""

from __future__ import annotations

from pathlib import Path

from livesight.core.clock import FakeClock
from livesight.settings import ModelConfig
from tests.support.fake_upstream import MODEL, run_fake_upstream
from tests.support.server import run_server


def test_ready_follows_the_upstream_probe(tmp_path: Path, clock: FakeClock) -> None:
    with run_fake_upstream() as fake:
        models = [
            ModelConfig(id="up", base_url=fake.base_url, upstream_model=MODEL, profile="vllm", owned_by="lab"),
            ModelConfig(id="down", base_url="http://127.0.0.1:9/v1", video=False, max_frames=4),
        ]
        with run_server(tmp_path, clock=clock, models=models, builtin_models=[]) as srv, srv.client() as c:
            cards = {m["id"]: m for m in c.get("/v1/models").json()["data"]}
            assert cards["up"]["status"] == "ready"
            assert cards["up"]["owned_by"] == "lab"
            assert cards["up"]["capabilities"] == {"image": True, "video": True, "max_frames": 32}
            assert cards["down"]["status"] == "unavailable"
            assert cards["down"]["capabilities"] == {"image": True, "video": False, "max_frames": 4}
            assert "livesight/ocr" not in cards


def test_ocr_is_listed_by_default(tmp_path: Path, clock: FakeClock) -> None:
    with run_server(tmp_path, clock=clock, preload_builtin_models=False) as srv, srv.client() as c:
        cards = {m["id"]: m for m in c.get("/models").json()["data"]}
        card = cards["livesight/ocr"]
        assert card["backend"] == "builtin"
        assert card["owned_by"] == "livesight"
        assert card["capabilities"]["video"] is True
