from pathlib import Path

from livesight.settings import ModelConfig
from tests.support.server import LiveServer, run_server


def test_health_endpoints_need_no_key(server: LiveServer) -> None:
    with server.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/readyz").json() == {"status": "ok"}


def test_models_list_needs_no_key_and_is_served_on_every_base_path(tmp_path: Path) -> None:
    models = [ModelConfig(id="Qwen/Qwen3-VL-8B-Instruct", base_url="http://127.0.0.1:9/v1", profile="vllm")]
    with run_server(tmp_path, models=models) as srv, srv.client() as c:
        bodies = [c.get(p).json() for p in ("/models", "/v1/models", "/v1beta/models")]
    assert bodies[0] == bodies[1] == bodies[2]
    body = bodies[0]
    assert body["object"] == "list"
    card = next(m for m in body["data"] if m["id"] == "Qwen/Qwen3-VL-8B-Instruct")
    assert card["object"] == "model"
    assert isinstance(card["created"], int) and card["owned_by"]
    # nothing answers at 127.0.0.1:9, so the model must not claim to be ready
    assert card["status"] == "unavailable"
