"""Signalling messages keep the invariants the SDKs crash without."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from livekit.protocol import models, rtc

from livesight.ingest import signal


def join(**overrides: object) -> rtc.SignalResponse:
    args: dict[str, object] = {
        "room": "room-1",
        "room_sid": signal.new_sid("RM_"),
        "participant_sid": signal.new_sid("PA_"),
        "identity": "publisher",
        "name": "livesight publisher",
        "ping_interval_s": 5,
        "ping_timeout_s": 15,
        "now_ms": 1_800_000_000_000,
    }
    args.update(overrides)
    return signal.join(**args)  # type: ignore[arg-type]


def test_join_has_what_the_sdks_need() -> None:
    response = rtc.SignalResponse()
    response.ParseFromString(join().SerializeToString())
    j = response.join
    assert response.WhichOneof("message") == "join"
    assert j.room.name == "room-1"
    assert j.room.sid.startswith("RM_")
    assert j.participant.sid.startswith("PA_")
    assert j.participant.identity == "publisher"
    assert j.ping_interval > 0
    assert j.ping_timeout > 0
    assert j.subscriber_primary is False
    assert list(j.ice_servers) == []
    assert [c.mime for c in j.enabled_publish_codecs] == ["video/VP8", "video/H264", "audio/opus"]
    assert j.participant.permission.can_publish
    assert not j.participant.permission.can_subscribe


@pytest.mark.parametrize(
    "bad",
    [
        {"participant_sid": "XX_1"},
        {"room_sid": "room"},
        {"ping_interval_s": 0},
        {"ping_timeout_s": 0},
    ],
)
def test_join_refuses_values_that_crash_clients(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"SDK|require"):
        join(**bad)


def test_answer_echoes_the_offer_id() -> None:
    a = signal.answer("v=0\r\n", 7).answer
    assert a.type == "answer"
    assert a.id == 7


def test_track_published_echoes_cid_and_fills_codecs() -> None:
    request = rtc.AddTrackRequest(cid="cid-1", name="camera", type=models.TrackType.VIDEO, width=640, height=480)
    published = signal.track_published(request, signal.new_sid("TR_"), "video/VP8").track_published
    assert published.cid == "cid-1"
    assert published.track.sid.startswith("TR_")
    assert [c.mime_type for c in published.track.codecs] == ["video/VP8"]
    assert (published.track.width, published.track.height) == (640, 480)
    with pytest.raises(ValueError, match="TR_"):
        signal.track_published(request, "bad", "video/VP8")


def test_leave_actions() -> None:
    assert signal.leave(models.DisconnectReason.ROOM_DELETED).leave.action == rtc.LeaveRequest.DISCONNECT
    resume = signal.refuse_resume().leave
    assert resume.action == rtc.LeaveRequest.RECONNECT
    assert resume.reason == models.DisconnectReason.STATE_MISMATCH


def test_pongs() -> None:
    assert signal.pong_response(123, 456).pong_resp.last_ping_timestamp == 123
    assert signal.legacy_pong(456).pong == 456


@pytest.mark.parametrize("gzipped", [False, True])
def test_join_request_round_trip(gzipped: bool) -> None:
    request = rtc.JoinRequest(
        publisher_offer=rtc.SessionDescription(type="offer", sdp="v=0\r\n" * 50, id=3), reconnect=True
    )
    parsed = signal.parse_join_request(signal.encode_join_request(request, gzipped=gzipped))
    assert parsed.publisher_offer.sdp == request.publisher_offer.sdp
    assert parsed.reconnect


@given(st.text(max_size=64))
def test_malformed_join_requests_raise_signal_error(text: str) -> None:
    reason = "parsed"
    try:
        signal.parse_join_request(text)
    except signal.SignalError as exc:
        reason = exc.reason
    assert reason  # parsed, or refused with a reason: never another exception


def test_malformed_signal_request() -> None:
    with pytest.raises(signal.SignalError):
        signal.parse_request(b"\xff\xff\xff")
