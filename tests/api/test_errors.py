"""Every error of the non-chat endpoints: right status, exact envelope, nothing else affected."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from livesight.store.keys import ApiKey, SQLiteKeyStore
from tests.support.server import LiveServer, run_server

DETAIL_ONLY = {"detail"}


def assert_detail(r: httpx.Response, status: int, contains: str = "") -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == DETAIL_ONLY and isinstance(body["detail"], str), body
    assert contains in body["detail"]
    assert "Traceback" not in r.text


def assert_validation(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.status_code == 422, r.text
    body = r.json()
    assert set(body) == {"error", "message", "details"}
    assert body["error"] == "validation_error" and body["message"] == "Request validation failed"
    for d in body["details"]:
        assert set(d) == {"loc", "msg", "type"}
    details: list[dict[str, Any]] = body["details"]
    return details


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer ovs-nope"}],
)
def test_missing_or_unknown_key_is_401(server: LiveServer, headers: dict[str, str]) -> None:
    with server.client() as c:
        for method, path in [("POST", "/v1/streams"), ("GET", f"/v1/streams/{uuid.uuid4()}")]:
            r = c.request(method, path, headers=headers)
            assert_detail(r, 401)
            assert r.headers["www-authenticate"] == "Bearer"


def test_revoked_key_is_401_and_other_keys_keep_working(server: LiveServer) -> None:
    revoked, kept = server.new_key(), server.new_key()
    with server.client(revoked) as a, server.client(kept) as b:
        sid = a.post("/v1/streams").json()["id"]
        assert b.post("/v1/streams").status_code == 201
        keys = server.keys
        record = keys.verify(revoked)
        assert record is not None
        keys.revoke(record.id)
        assert_detail(a.get(f"/v1/streams/{sid}"), 401, "revoked")
        assert b.post("/v1/streams").status_code == 201


def test_malformed_json_is_422(server: LiveServer) -> None:
    with server.client(server.new_key()) as c:
        r = c.post("/v1/streams", content=b"{not json", headers={"content-type": "application/json"})
    details = assert_validation(r)
    assert details[0]["type"] == "json_invalid"


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"source": 5}, ["body", "source"]),
        ({"source": {"type": "webcam", "url": "x"}}, ["body", "source", "type"]),
        ({"source": {"type": "rtsp"}}, ["body", "source", "url"]),
        ([1, 2], ["body"]),
        ("text", ["body"]),
    ],
)
def test_wrong_types_are_422_naming_the_field(server: LiveServer, body: Any, loc: list[str]) -> None:
    with server.client(server.new_key()) as c:
        details = assert_validation(c.post("/v1/streams", json=body))
    assert any(d["loc"][: len(loc)] == loc for d in details), details


def test_unusable_pulled_source_is_a_clear_400_and_creates_nothing(server: LiveServer) -> None:
    # never a reachable address: a pulled source would really connect to it
    key = server.new_key()
    with server.client(key) as c:
        r = c.post("/v1/streams", json={"source": {"type": "rtsp", "url": "http://127.0.0.1:9/cam"}})
    assert_detail(r, 400, "rtsp://")
    owner = server.keys.verify(key)
    assert owner is not None
    assert server.components.registry.active_count(owner.owner) == 0


@pytest.mark.parametrize(
    "url", ["rtsp://10.0.0.1/cam", "rtsp://camera.example/live", "rtsp://user:pw@192.0.2.9:554/x", "rtsp://[::1"]
)
def test_pulled_source_host_outside_the_allowlist_is_refused_before_connecting(server: LiveServer, url: str) -> None:
    with server.client(server.new_key()) as c:
        r = c.post("/v1/streams", json={"source": {"type": "rtsp", "url": url}})
    assert_detail(r, 400, "source_allowed_hosts")


def test_non_uuid_and_unknown_ids_are_404(server: LiveServer) -> None:
    with server.client(server.new_key()) as c:
        assert_detail(c.get("/v1/streams/not-a-uuid"), 404, "UUID")
        assert_detail(c.get(f"/v1/streams/{'x' * 5000}"), 404)
        assert_detail(c.post(f"/v1/streams/{uuid.uuid4()}/keepalive"), 404, "not found")
        assert_detail(c.delete(f"/v1/streams/{uuid.uuid4()}"), 404, "not found")
        # the uppercase form of a real id is the same stream
        sid = c.post("/v1/streams").json()["id"]
        assert c.get(f"/v1/streams/{sid.upper()}").json()["id"] == sid


def test_unknown_route_and_wrong_method(server: LiveServer) -> None:
    with server.client(server.new_key()) as c:
        assert_detail(c.get("/nothing-here"), 404)
        r = c.put("/v1/streams")
        assert_detail(r, 405)  # a stream endpoint: Overshoot's envelope exactly
        assert "POST" in r.headers["allow"]
        # where an OpenAI-style client may land (under /v1, not a stream endpoint), `message` too:
        # the openai SDK shows `message` in its exception text
        for base in ("/v1", "/v1beta"):
            r = c.get(f"{base}/nothing-here")
            assert (r.status_code, r.json()) == (404, {"detail": "Not Found", "message": "Not Found"})
            r = c.post(f"{base}/models")
            assert (r.status_code, r.json()) == (405, {"detail": "Method Not Allowed", "message": "Method Not Allowed"})
            assert r.headers["allow"] == "GET"


def test_oversized_body_is_413(tmp_path: Path) -> None:
    with run_server(tmp_path, max_body_bytes=2048) as srv, srv.client(srv.new_key()) as c:
        big = b'{"pad": "' + b"x" * 4096 + b'"}'
        assert_detail(c.post("/v1/streams", content=big, headers={"content-type": "application/json"}), 413, "2048")

        def chunks() -> Any:  # no content-length: counted while streaming
            for _ in range(8):
                yield b"x" * 1024

        r = c.post("/v1/streams", content=chunks(), headers={"content-type": "application/json"})
        assert_detail(r, 413, "2048")
        assert c.post("/v1/streams").status_code == 201


def test_request_id_is_echoed_or_generated(server: LiveServer) -> None:
    with server.client(server.new_key()) as c:
        assert c.get("/v1/models", headers={"X-Request-Id": "abc-123"}).headers["x-request-id"] == "abc-123"
        generated = c.get("/v1/models").headers["x-request-id"]
        assert len(generated) == 32
        bad = c.get("/v1/models", headers={"X-Request-Id": "no spaces allowed"}).headers["x-request-id"]
        assert bad != "no spaces allowed"
        for r in (c.get("/v1/streams/nope"), c.post("/v1/streams", content=b"{", headers={"content-type": "x"})):
            assert r.headers["x-request-id"]


class ExplodingKeys(SQLiteKeyStore):
    def verify(self, presented: str) -> ApiKey | None:
        raise RuntimeError("database password is hunter2")


def test_unexpected_exception_is_a_generic_500_without_internals(tmp_path: Path, caplog: Any) -> None:
    from livesight.api.app import create_app
    from livesight.settings import load_settings

    keys = ExplodingKeys(tmp_path / "k.db")
    app = create_app(load_settings(None, data_dir=tmp_path, port=0), keys=keys)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.get(f"/v1/streams/{uuid.uuid4()}", headers={"Authorization": "Bearer ovs-x"})

    import asyncio

    r = asyncio.run(go())
    assert_detail(r, 500, "internal server error")
    assert "hunter2" not in r.text and "RuntimeError" not in r.text
    assert r.headers["x-request-id"]
    assert any("unhandled error" in rec.getMessage() for rec in caplog.records)
