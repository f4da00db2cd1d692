"""GET /v1/cluster on one node without Redis: admin only, lists this node alone."""

from __future__ import annotations

from pathlib import Path

from livesight.core.clock import FakeClock
from livesight.store.keys import SQLiteKeyStore
from tests.support.server import run_server


def test_one_node_lists_itself_to_admins_only(tmp_path: Path) -> None:
    keys = SQLiteKeyStore(tmp_path / "keys.db")
    admin_key, admin = keys.create("admin")
    keys.close()
    with run_server(tmp_path, clock=FakeClock(), admin_key_ids=[admin_key.id], preload_builtin_models=False) as s:
        user = s.new_key()
        with s.client(user) as c:
            assert c.post("/v1/streams").status_code == 201
            r = c.get("/v1/cluster")
            assert r.status_code == 403 and r.json()["detail"]
        with s.client(admin) as c:
            body = c.get("/v1/cluster").json()
        assert body["redis"] is False and body["node_id"] == "local"
        (node,) = body["nodes"]
        assert node["streams"] == 1 and node["alive"] is True
        with s.client() as c:
            assert c.get("/readyz").status_code == 200
