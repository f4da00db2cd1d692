"""`livekit_url`: a LiveKit server the user runs. Publishers and viewers are sent there, and the stream's
node joins each stream's room as a hidden subscriber (the `livekit_room` gateway, with a fake at the SDK
seam: no LiveKit server binary exists here; tests/e2e/test_livekit_server.py runs against a real one
when LIVEKIT_URL is set)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from livekit import api

from livesight.api import app as app_module
from livesight.core.clock import SystemClock
from livesight.ingest.room_source import RoomSources
from tests.ingest.fake_room import FakePublication, FakeRoom, FakeSdk, numbered_frame
from tests.support.polling import wait_for
from tests.support.server import run_server

pytestmark = pytest.mark.timeout(60)
URL = "ws://127.0.0.1:9"  # never contacted: the SDK is the fake
KEY, SECRET = "APIlk", "their-livekit-secret-" + "s" * 20


def test_publishers_and_viewers_go_to_the_livekit_server_and_the_node_joins_each_room(tmp_path: Path) -> None:
    def setup(room: FakeRoom) -> None:
        room.join("publisher", FakePublication("TR_cam"))

    sdk = FakeSdk(setup=setup)
    settings = {"livekit_url": URL, "livekit_api_key": KEY, "livekit_api_secret": SECRET}
    with run_server(tmp_path, clock=SystemClock(), **settings) as server:
        gateway = server.components.gateway
        gateway.room_factory, gateway.frames_factory = sdk.room, sdk.frames
        verify = api.TokenVerifier(KEY, SECRET).verify
        with server.client(server.new_key()) as c:
            created = c.post("/v1/streams").json()
            sid = created["id"]
            assert created["publish"]["url"] == URL
            published = verify(created["publish"]["token"]).video
            assert published is not None and published.room == sid and published.can_publish
            view = c.post(f"/v1/streams/{sid}/viewer-token").json()["view"]
            viewer = verify(view["token"]).video
            assert view["url"] == URL and viewer is not None and viewer.room == sid
            assert viewer.can_subscribe and not viewer.can_publish

            room = wait_for(lambda: sdk.rooms[0] if sdk.rooms and sdk.rooms[0].connected_with else None)
            assert room.connected_with is not None
            joined_url, token, _ = room.connected_with
            joined = verify(token).video
            assert joined_url == URL and joined is not None and joined.room == sid
            assert joined.hidden and joined.can_subscribe and not joined.can_publish
            track = wait_for(lambda: room.remote_participants["publisher"].track_publications["TR_cam"].track)
            for n in range(3):
                server.call(track.frames.put_nowait, numbered_frame(n))
            status = wait_for(lambda: (s := c.get(f"/v1/streams/{sid}").json())["last_frame_index"] is not None and s)
            assert status["publisher_connected"] and status["source"] is None

            assert c.get("/rtc/validate").status_code == 404  # the embedded endpoint is off: LiveKit's is used
            assert c.delete(f"/v1/streams/{sid}").status_code == 200
            wait_for(lambda: room.disconnected, what="the room left")


def test_the_node_rejoins_its_streams_rooms_after_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sdk = FakeSdk()
    # the fake SDK from the start: a restarted node rejoins its rooms before a test could swap it in
    monkeypatch.setattr(app_module, "RoomSources", functools.partial(RoomSources, room_factory=sdk.room))
    settings = {"livekit_url": URL, "livekit_api_key": KEY, "livekit_api_secret": SECRET, "persist_streams": True}
    with run_server(tmp_path, clock=SystemClock(), **settings) as server:
        key = server.new_key()
        with server.client(key) as c:
            sid = c.post("/v1/streams").json()["id"]
        wait_for(lambda: sdk.rooms and sdk.rooms[0].connected_with)
    with run_server(tmp_path, clock=SystemClock(), **settings) as server:
        rejoined = wait_for(lambda: len(sdk.rooms) == 2 and sdk.rooms[1].connected_with)
        assert api.TokenVerifier(KEY, SECRET).verify(rejoined[1]).video.room == sid  # type: ignore[union-attr]
        with server.client(key) as c:
            assert c.get(f"/v1/streams/{sid}").json()["state"] == "active"
