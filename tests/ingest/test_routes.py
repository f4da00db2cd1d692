"""The signalling endpoints over a real server and WebSocket client (no media: no namespace needed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from livekit.protocol import models, rtc
from starlette.responses import Response
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from livesight.api import errors as api_errors
from livesight.core import errors
from livesight.ingest import signal
from tests.support.server import LiveServer, run_server

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with run_server(tmp_path_factory.mktemp("routes")) as live:
        yield live


@pytest.fixture(scope="module")
def key(server: LiveServer) -> str:
    return server.new_key()


def new_stream(server: LiveServer, key: str) -> tuple[str, str]:
    with server.client(key) as c:
        body = c.post("/v1/streams").json()
    return body["id"], body["publish"]["token"]


def ws_url(server: LiveServer, path: str = "/rtc") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def receive(ws: ClientConnection) -> rtc.SignalResponse:
    response = rtc.SignalResponse()
    data = ws.recv(timeout=5)
    assert isinstance(data, bytes)
    response.ParseFromString(data)
    return response


def refused_status(url: str, **kwargs: object) -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as info:
        connect(url, open_timeout=5, **kwargs)  # type: ignore[arg-type]
    response = info.value.response
    return response.status_code, response.body.decode() if response.body else ""


def test_v0_join_via_header_token(server: LiveServer, key: str) -> None:
    sid, token = new_stream(server, key)
    with connect(ws_url(server), additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=5) as ws:
        join = receive(ws)
        assert join.WhichOneof("message") == "join"
        assert join.join.room.name == sid
        assert join.join.participant.sid.startswith("PA_")
        assert join.join.ping_interval > 0
        assert join.join.ping_timeout > 0
        ws.send(rtc.SignalRequest(ping_req=rtc.Ping(timestamp=77)).SerializeToString())
        while (message := receive(ws)).WhichOneof("message") != "pong_resp":
            pass
        assert message.pong_resp.last_ping_timestamp == 77
        with server.client(key) as c:
            assert c.get(f"/v1/streams/{sid}").json()["publisher_connected"] is True
        ws.send(rtc.SignalRequest(leave=rtc.LeaveRequest()).SerializeToString())


def test_v1_join_via_query_token(server: LiveServer, key: str) -> None:
    sid, token = new_stream(server, key)
    join_request = signal.encode_join_request(rtc.JoinRequest(), gzipped=True)
    with connect(ws_url(server, f"/rtc/v1?access_token={token}&join_request={join_request}"), open_timeout=5) as ws:
        assert receive(ws).join.room.name == sid


def test_resume_is_refused_with_a_rejoin(server: LiveServer, key: str) -> None:
    _, token = new_stream(server, key)
    with connect(ws_url(server, f"/rtc?access_token={token}&reconnect=1&sid=PA_x"), open_timeout=5) as ws:
        leave = receive(ws).leave
    assert leave.action == rtc.LeaveRequest.RECONNECT
    assert leave.reason == models.DisconnectReason.STATE_MISMATCH


@pytest.mark.parametrize(
    ("token", "status", "reason"),
    [(None, 401, "missing access token"), ("garbage", 401, "invalid token")],
)
def test_bad_tokens_get_401_with_a_reason(server: LiveServer, token: str | None, status: int, reason: str) -> None:
    query = f"?access_token={token}" if token else ""
    got_status, body = refused_status(ws_url(server, "/rtc" + query))
    assert got_status == status
    assert body.startswith(reason)
    with server.client() as c:
        response = c.get("/rtc/validate" + query)
    assert response.status_code == status
    assert response.text == body
    assert response.headers["access-control-allow-origin"] == "*"


def test_ended_stream_token_is_refused(server: LiveServer, key: str) -> None:
    sid, token = new_stream(server, key)
    with server.client(key) as c:
        c.delete(f"/v1/streams/{sid}")
    status, body = refused_status(ws_url(server, f"/rtc?access_token={token}"))
    assert status == 401
    assert "not active" in body


def test_second_publisher_gets_409(server: LiveServer, key: str) -> None:
    _, token = new_stream(server, key)
    with connect(ws_url(server, f"/rtc?access_token={token}"), open_timeout=5) as ws:
        receive(ws)
        status, body = refused_status(ws_url(server, f"/rtc?access_token={token}"))
        assert status == 409
        assert "already has a connected publisher" in body
        with server.client() as c:
            assert c.get("/rtc/v1/validate", params={"access_token": token}).status_code == 409


def test_delete_sends_leave_and_closes(server: LiveServer, key: str) -> None:
    sid, token = new_stream(server, key)
    with connect(ws_url(server, f"/rtc?access_token={token}"), open_timeout=5) as ws:
        receive(ws)
        with server.client(key) as c:
            assert c.delete(f"/v1/streams/{sid}").status_code == 200
        kinds = []
        try:
            while True:
                kinds.append(receive(ws).WhichOneof("message"))
        except Exception:  # closed by the server
            pass
    assert "leave" in kinds


def test_malformed_join_request_is_400(server: LiveServer, key: str) -> None:
    _, token = new_stream(server, key)
    assert refused_status(ws_url(server, f"/rtc/v1?access_token={token}&join_request=////"))[0] == 400


def test_signalling_paths_are_not_in_the_openapi_schema(server: LiveServer) -> None:
    with server.client() as c:
        paths = c.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/rtc")]


def test_v1_off_answers_404_without_the_room_phrase(tmp_path: Path) -> None:
    with run_server(tmp_path, ingest_v1=False) as live:
        key = live.new_key()
        _, token = new_stream(live, key)
        status, body = refused_status(ws_url(live, f"/rtc/v1?access_token={token}&join_request="))
        assert status == 404
        assert "requested room does not exist" not in body
        with live.client() as c:
            assert c.get("/rtc/v1/validate", params={"access_token": token}).status_code == 404
            assert c.get("/rtc/validate", params={"access_token": token}).status_code == 200


def test_refusals_come_out_through_the_one_error_mapping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every /rtc refusal is a typed error of core/errors.py rendered by api/errors.rtc_refusal_response:
    the class's status, the message as the plain-text body livekit-client and the Rust SDK show."""
    rendered: list[errors.LivesightError] = []

    def recording(exc: errors.LivesightError) -> Response:
        rendered.append(exc)
        return real(exc)

    real = api_errors.rtc_refusal_response
    monkeypatch.setattr(api_errors, "rtc_refusal_response", recording)
    with run_server(tmp_path) as live:
        key = live.new_key()
        _, token = new_stream(live, key)
        refusals = [
            (ws_url(live, "/rtc"), errors.PublisherUnauthorized),
            (ws_url(live, "/rtc?access_token=garbage"), errors.TokenRejected),
            (ws_url(live, f"/rtc/v1?access_token={token}&join_request=////"), errors.SignalError),
        ]
        for url, cls in refusals:
            rendered.clear()
            status, body = refused_status(url)
            assert [type(e) for e in rendered] == [cls]
            assert (status, body) == (cls.status, rendered[0].message)
        with connect(ws_url(live, f"/rtc?access_token={token}"), open_timeout=5) as ws:
            receive(ws)
            rendered.clear()
            status, body = refused_status(ws_url(live, f"/rtc?access_token={token}"))
            assert [type(e) for e in rendered] == [errors.PublisherConflict]
            assert (status, body) == (409, rendered[0].message)
            rendered.clear()
            with live.client() as c:
                response = c.get("/rtc/validate", params={"access_token": token})
            assert [type(e) for e in rendered] == [errors.PublisherConflict]
            assert (response.status_code, response.text) == (409, rendered[0].message)
