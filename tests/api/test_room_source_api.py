"""`POST /v1/streams` with a `livekit_room` source: validation, secrets never echoed nor logged, the
stream's end leaves the room, a restart cannot rejoin. The SDK is faked at its seam (the real one is
tested in tests/e2e/test_gateway.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from livesight.core.clock import SystemClock
from tests.ingest.fake_room import FakePublication, FakeRoom, FakeSdk
from tests.support.polling import wait_for
from tests.support.server import LiveServer, run_server

pytestmark = pytest.mark.timeout(60)
SECRET = "lk-secret-" + "q" * 30
TOKEN = jwt.encode({"iss": "APIk", "sub": "me", "video": {"room": "lobby", "roomJoin": True}}, "x" * 32)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[LiveServer, FakeSdk]]:
    def setup(room: FakeRoom) -> None:
        room.join("cam", FakePublication("TR_cam"))

    sdk = FakeSdk(setup=setup)
    with run_server(tmp_path, clock=SystemClock()) as server:
        rooms = server.components.rooms
        rooms.room_factory, rooms.frames_factory = sdk.room, sdk.frames
        yield server, sdk


def room_source(**fields: Any) -> dict[str, Any]:
    return {"source": {"type": "livekit_room", "url": "ws://127.0.0.1:7880", **fields}}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"room": "lobby"}, "needs `token`, or `api_key` and `api_secret`"),
        ({"room": "lobby", "api_key": "k"}, "needs `token`, or `api_key` and `api_secret`"),
        ({"api_key": "k", "api_secret": SECRET}, "`room` is required"),
        ({"token": TOKEN, "api_key": "k", "api_secret": SECRET}, "not both"),
        ({"token": "not-a-jwt"}, "not a LiveKit access token"),
        ({"token": TOKEN, "room": "other"}, "not the room `token` grants"),
        ({"token": jwt.encode({"video": {}}, "x" * 32)}, "names no room"),
    ],
)
def test_room_sources_missing_what_a_join_needs_are_400(
    live: tuple[LiveServer, FakeSdk], fields: dict[str, Any], message: str
) -> None:
    server, sdk = live
    with server.client(server.new_key()) as c:
        r = c.post("/v1/streams", json=room_source(**fields))
    assert r.status_code == 400, r.text
    assert message in r.text
    assert SECRET not in r.text and TOKEN not in r.text
    assert sdk.rooms == []


def test_room_fields_of_the_wrong_type_are_422_and_on_another_source_400(live: tuple[LiveServer, FakeSdk]) -> None:
    server, _ = live
    with server.client(server.new_key()) as c:
        r = c.post("/v1/streams", json=room_source(token=TOKEN, track_source="microphone"))
        assert r.status_code == 422 and r.json()["details"][0]["loc"] == ["body", "source", "track_source"]
        assert TOKEN not in r.text  # the validation error does not echo the body
        r = c.post("/v1/streams", json={"source": {"type": "rtsp", "url": "rtsp://127.0.0.1/x", "token": TOKEN}})
        assert r.status_code == 400 and "only a livekit_room source" in r.text


@pytest.mark.parametrize(
    ("url", "message"),
    [("https://127.0.0.1:7880", "ws:// or wss://"), ("wss://lk.example.com", "source_allowed_hosts")],
)
def test_unusable_room_urls_are_400(live: tuple[LiveServer, FakeSdk], url: str, message: str) -> None:
    server, sdk = live
    key = server.new_key()
    with server.client(key) as c:
        r = c.post("/v1/streams", json=room_source(url=url, token=TOKEN))
        assert r.status_code == 400 and message in r.json()["detail"], r.text
        assert [s["state"] for s in c.get("/v1/streams").json()["data"]] in ([], ["ended"])
    assert sdk.rooms == []


def test_a_room_stream_buffers_hides_its_secrets_and_leaves_when_deleted(
    live: tuple[LiveServer, FakeSdk], caplog: pytest.LogCaptureFixture
) -> None:
    server, sdk = live
    caplog.set_level(logging.DEBUG)
    with server.client(server.new_key()) as c:
        created = c.post(
            "/v1/streams", json=room_source(room="lobby", api_key="APIk", api_secret=SECRET, track_source="camera")
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["publish"] is None
        sid = body["id"]
        room = wait_for(lambda: sdk.rooms[0] if sdk.rooms and sdk.rooms[0].connected_with else None)
        assert room.subscribe_requests == ["TR_cam"]
        status = c.get(f"/v1/streams/{sid}")
        assert status.json()["source"] == {
            "type": "livekit_room",
            "url": "ws://127.0.0.1:7880",
            "room": "lobby",
            "participant": None,
            "track_source": "camera",
        }
        listing = c.get("/v1/streams").text
        for text in (created.text, status.text, listing):
            assert SECRET not in text and "APIk" not in text
        minted = room.connected_with[1] if room.connected_with else ""
        assert c.delete(f"/v1/streams/{sid}").status_code == 200
        wait_for(lambda: room.disconnected, what="the room left")
    assert SECRET not in caplog.text and minted not in caplog.text


def test_a_restored_room_stream_ends_source_failed(tmp_path: Path) -> None:
    sdk = FakeSdk()
    with run_server(tmp_path, clock=SystemClock(), persist_streams=True) as server:
        server.components.rooms.room_factory = sdk.room
        key = server.new_key()
        with server.client(key) as c:
            r = c.post("/v1/streams", json=room_source(token=TOKEN))
            assert r.status_code == 201, r.text
            sid = r.json()["id"]
    stored = (tmp_path / "livesight.db").read_bytes() if (tmp_path / "livesight.db").exists() else b""
    assert TOKEN.encode() not in stored
    with run_server(tmp_path, clock=SystemClock(), persist_streams=True) as server:
        server.components.rooms.room_factory = sdk.room
        with server.client(key) as c:
            status = wait_for(lambda: (s := c.get(f"/v1/streams/{sid}").json())["state"] == "ended" and s)
        assert status["end_reason"] == "source_failed"
        assert "not kept across a restart" in status["last_error"]
        assert status["source"]["room"] == "lobby"
