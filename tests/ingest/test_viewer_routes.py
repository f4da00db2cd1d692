"""Viewer tokens and viewer signalling over a real server and WebSocket client (no media needed)."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from livekit import api
from livekit.protocol import models, rtc
from websockets.sync.client import connect

from livesight.core.frame import EncodedPayload, IngestFrame
from livesight.ingest import signal
from tests.ingest.test_routes import key, receive, refused_status, server, ws_url
from tests.support.server import LiveServer

pytestmark = pytest.mark.timeout(30)
__all__ = ["key", "server"]  # the module-scoped fixtures of test_routes.py, a server of this module's own


def new_viewed_stream(server: LiveServer, key: str) -> tuple[str, str]:
    with server.client(key) as c:
        sid = c.post("/v1/streams").json()["id"]
        response = c.post(f"/v1/streams/{sid}/viewer-token")
    assert response.status_code == 200, response.text
    return sid, response.json()["view"]["token"]


def answer_to(offer: rtc.SessionDescription) -> rtc.SessionDescription:
    """An answer from a real (aiortc) peer: enough for the server to take it; no media flows here."""

    async def make() -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            return str(pc.localDescription.sdp)
        finally:
            await pc.close()

    return rtc.SessionDescription(type="answer", sdp=asyncio.run(make()), id=offer.id)


def until(ws: object, kind: str) -> rtc.SignalResponse:
    while (message := receive(ws)).WhichOneof("message") != kind:  # type: ignore[arg-type]
        pass
    return message


def test_the_viewer_token_subscribes_only_in_its_room_and_is_hidden(server: LiveServer, key: str) -> None:
    sid, token = new_viewed_stream(server, key)
    claims = api.TokenVerifier(server.components.tokens.api_key, server.components.tokens._secret).verify(token)
    video = claims.video
    assert video is not None and video.room == sid and video.room_join
    assert video.can_subscribe and not video.can_publish and not video.can_publish_data and video.hidden
    assert claims.identity.startswith("viewer-")


def test_viewer_token_is_owner_scoped_and_needs_an_active_stream(server: LiveServer, key: str) -> None:
    sid, _ = new_viewed_stream(server, key)
    other = server.new_key("other")
    with server.client(other) as c:
        assert c.post(f"/v1/streams/{sid}/viewer-token").status_code == 404
        assert c.post("/v1/streams/not-a-stream/viewer-token").status_code == 404
    with server.client() as c:
        assert c.post(f"/v1/streams/{sid}/viewer-token").status_code == 401
    with server.client(key) as c:
        assert c.delete(f"/v1/streams/{sid}").status_code == 200
        ended = c.post(f"/v1/streams/{sid}/viewer-token")
    assert ended.status_code == 404 and "has ended" in ended.text


def test_the_endpoint_is_in_the_openapi_document(server: LiveServer) -> None:
    with server.client() as c:
        doc = c.get("/openapi.json").json()
    operation = doc["paths"]["/v1/streams/{stream_id}/viewer-token"]["post"]
    assert {"200", "401", "404"} <= set(operation["responses"])
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert doc["components"]["schemas"][schema]["required"] == ["view"]


def test_viewers_use_v0_signalling(server: LiveServer, key: str) -> None:
    _, token = new_viewed_stream(server, key)
    status, body = refused_status(ws_url(server, f"/rtc/v1?access_token={token}&join_request="))
    assert status == 404 and "requested room does not exist" not in body
    with server.client() as c:
        assert c.get("/rtc/v1/validate", params={"access_token": token}).status_code == 404
        assert c.get("/rtc/validate", params={"access_token": token}).status_code == 200


def test_a_viewer_joins_subscriber_primary_and_is_offered_the_streams_video(server: LiveServer, key: str) -> None:
    sid, token = new_viewed_stream(server, key)
    with connect(ws_url(server, f"/rtc?access_token={token}"), open_timeout=5) as ws:
        join = receive(ws).join
        assert join.subscriber_primary and join.room.name == sid and not join.other_participants
        assert join.participant.permission.can_subscribe and not join.participant.permission.can_publish
        first = until(ws, "offer").offer
        assert "m=application" in first.sdp and "m=video" not in first.sdp
        ws.send(
            rtc.SignalRequest(add_track=rtc.AddTrackRequest(cid="x", type=models.TrackType.VIDEO)).SerializeToString()
        )
        assert until(ws, "request_response").request_response.message == "a viewer token cannot publish"

        # the stream's first keyframe: the viewer learns of the source participant; its track is offered
        # once the first offer is answered (one negotiation at a time)
        payload = EncodedPayload(b"\x10\x02\x00\x9d\x01\x2a\x80\x02\xe0\x01" + bytes(40), "vp8", keyframe=True)
        target = server.components.registry.ingest_target(sid)
        server.call(target.push_frame, IngestFrame("s", 0.0, 640, 480, payload))
        update = until(ws, "update").update
        (source,) = update.participants
        (track,) = source.tracks
        assert source.sid.startswith("PA_") and track.sid.startswith("TR_") and track.mime_type == "video/VP8"
        ws.send(rtc.SignalRequest(answer=answer_to(first)).SerializeToString())
        offer = until(ws, "offer").offer
        assert offer.id == first.id + 1
        assert f"a=msid:{source.sid}|{track.sid} {track.sid}" in offer.sdp
        assert "VP8/90000" in offer.sdp and "H264" not in offer.sdp
        with server.client(key) as c:
            assert c.delete(f"/v1/streams/{sid}").status_code == 200
        leave = until(ws, "leave").leave
        assert leave.reason == models.DisconnectReason.ROOM_DELETED and not leave.can_reconnect


def test_a_token_that_can_neither_publish_nor_subscribe_is_refused(server: LiveServer, key: str) -> None:
    sid, _ = new_viewed_stream(server, key)
    tokens = server.components.tokens
    grants = api.VideoGrants(room_join=True, room=sid, can_publish=False, can_subscribe=False)
    token = api.AccessToken(tokens.api_key, tokens._secret).with_identity("x").with_grants(grants).to_jwt()
    status, body = refused_status(ws_url(server, f"/rtc?access_token={token}"))
    assert status == 401 and "neither publish nor subscribe" in body
    assert signal.VIEWER_PERMISSION.hidden


def test_a_viewer_token_opens_only_its_own_room(server: LiveServer, key: str) -> None:
    sid, token = new_viewed_stream(server, key)
    other, _ = new_viewed_stream(server, key)
    with connect(ws_url(server, f"/rtc?access_token={token}&room={other}"), open_timeout=5) as ws:
        assert receive(ws).join.room.name == sid  # the room is the token's, whatever the client asks
    tokens = server.components.tokens
    stranger = tokens.viewer_token("00000000-0000-4000-8000-00000000dead")
    status, body = refused_status(ws_url(server, f"/rtc?access_token={stranger}"))
    assert status == 401 and "not active" in body
    forged = api.AccessToken(tokens.api_key, "another-secret-" * 3).with_identity("v")
    forged_token = forged.with_grants(api.VideoGrants(room_join=True, room=sid, can_subscribe=True)).to_jwt()
    assert refused_status(ws_url(server, f"/rtc?access_token={forged_token}"))[0] == 401
