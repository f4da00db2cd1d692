"""LiveKit signalling messages: the one place they are built and parsed.

The SDKs are strict about some fields (observed crashes, see docs/ingest.md): participant sids must
start with `PA_`, track sids with `TR_`; `room` and `participant` must be present; `ping_interval`
and `ping_timeout` must be > 0; an answer's type must be exactly "answer" and echo the offer's id.
Every builder here keeps those invariants, and tests check them.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import secrets
import string

from google.protobuf.message import DecodeError
from livekit.protocol import models, rtc

from livesight import __version__
from livesight.core.errors import (
    SignalError as SignalError,  # re-exported: session.py and tests catch `signal.SignalError`
)

_ALPHABET = string.ascii_letters + string.digits
SERVER_VERSION = f"livesight-{__version__}"
PUBLISH_CODECS = ("video/VP8", "video/H264", "audio/opus")
"""What the endpoint advertises in `enabled_publish_codecs` (livekit-client honours it)."""


def new_sid(prefix: str) -> str:
    """A LiveKit-style id: `PA_…` (participant), `TR_…` (track), `RM_…` (room)."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(12))


# --- parsing ------------------------------------------------------------------------------------


def parse_request(data: bytes) -> rtc.SignalRequest:
    request = rtc.SignalRequest()
    try:
        request.ParseFromString(data)
    except DecodeError:
        raise SignalError("malformed SignalRequest") from None
    return request


def parse_join_request(param: str) -> rtc.JoinRequest:
    """Decode v1's `join_request` query parameter: base64url(WrappedJoinRequest), maybe gzipped."""
    try:
        raw = base64.urlsafe_b64decode(param + "=" * (-len(param) % 4))
        wrapped = rtc.WrappedJoinRequest()
        wrapped.ParseFromString(raw)
        payload = wrapped.join_request
        if wrapped.compression == rtc.WrappedJoinRequest.GZIP:
            payload = gzip.decompress(payload)
        elif wrapped.compression != rtc.WrappedJoinRequest.NONE:
            raise SignalError("unsupported join_request compression")
        request = rtc.JoinRequest()
        request.ParseFromString(payload)
    except (binascii.Error, ValueError, OSError, EOFError, DecodeError):
        raise SignalError("malformed join_request") from None
    return request


def encode_join_request(request: rtc.JoinRequest, *, gzipped: bool = False) -> str:
    """The inverse of `parse_join_request` (tests and tools)."""
    payload = request.SerializeToString()
    compression = rtc.WrappedJoinRequest.NONE
    if gzipped:
        payload, compression = gzip.compress(payload), rtc.WrappedJoinRequest.GZIP
    wrapped = rtc.WrappedJoinRequest(compression=compression, join_request=payload)
    return base64.urlsafe_b64encode(wrapped.SerializeToString()).decode().rstrip("=")


# --- building -----------------------------------------------------------------------------------


PUBLISHER_PERMISSION = models.ParticipantPermission(
    can_subscribe=False,
    can_publish=True,
    can_publish_data=False,
    can_publish_sources=[models.TrackSource.CAMERA, models.TrackSource.SCREEN_SHARE],
)
VIEWER_PERMISSION = models.ParticipantPermission(
    can_subscribe=True, can_publish=False, can_publish_data=False, hidden=True
)


def join(
    *,
    room: str,
    room_sid: str,
    participant_sid: str,
    identity: str,
    name: str,
    ping_interval_s: int,
    ping_timeout_s: int,
    now_ms: int,
    viewer: bool = False,
    others: list[models.ParticipantInfo] | None = None,
) -> rtc.SignalResponse:
    """The first message of a connection. A publisher gets `subscriber_primary=false` (it negotiates its
    publisher PC at once); a viewer gets `subscriber_primary=true`: the endpoint offers the subscriber PC,
    and `others` (the stream's source participant, when it has video) says what it will receive."""
    if not participant_sid.startswith("PA_") or not room_sid.startswith("RM_"):
        raise ValueError("participant sids start with PA_ and room sids with RM_ (the SDKs require it)")
    if ping_interval_s <= 0 or ping_timeout_s <= 0:
        raise ValueError("ping_interval and ping_timeout must be > 0 (0 crashes the Rust SDK)")
    participant = models.ParticipantInfo(
        sid=participant_sid,
        identity=identity,
        name=name,
        state=models.ParticipantInfo.JOINED,
        joined_at=now_ms // 1000,
        joined_at_ms=now_ms,
        permission=VIEWER_PERMISSION if viewer else PUBLISHER_PERMISSION,
        is_publisher=not viewer,
        kind=models.ParticipantInfo.STANDARD,
    )
    others = others or []
    codecs = [models.Codec(mime=m) for m in PUBLISH_CODECS]
    response = rtc.JoinResponse(
        room=models.Room(
            sid=room_sid,
            name=room,
            creation_time=now_ms // 1000,
            creation_time_ms=now_ms,
            num_participants=1 + len(others),
            num_publishers=len(others) if viewer else 1,
            enabled_codecs=codecs,
        ),
        participant=participant,
        other_participants=others,
        server_version=SERVER_VERSION,
        ice_servers=[],
        subscriber_primary=viewer,
        ping_interval=ping_interval_s,
        ping_timeout=ping_timeout_s,
        server_info=models.ServerInfo(edition=models.ServerInfo.Standard, version=SERVER_VERSION, protocol=16),
        enabled_publish_codecs=codecs,
        fast_publish=False,
    )
    return rtc.SignalResponse(join=response)


def source_participant(
    *, sid: str, identity: str, track_sid: str, mime_type: str, width: int, height: int, now_ms: int
) -> models.ParticipantInfo:
    """The stream's video as viewers see it: one participant (for a publisher's stream and a pulled one
    alike) with one camera track. `sid` and `track_sid` are the ones the subscriber PC's msid names."""
    if not sid.startswith("PA_") or not track_sid.startswith("TR_"):
        raise ValueError("participant sids start with PA_ and track sids with TR_ (the SDKs require it)")
    track = models.TrackInfo(
        sid=track_sid,
        type=models.TrackType.VIDEO,
        name="camera",
        width=width,
        height=height,
        source=models.TrackSource.CAMERA,
        mime_type=mime_type,
        codecs=[models.SimulcastCodecInfo(mime_type=mime_type)],
    )
    return models.ParticipantInfo(
        sid=sid,
        identity=identity,
        name=identity,
        state=models.ParticipantInfo.ACTIVE,
        tracks=[track],
        joined_at=now_ms // 1000,
        joined_at_ms=now_ms,
        permission=PUBLISHER_PERMISSION,
        is_publisher=True,
        kind=models.ParticipantInfo.STANDARD,
    )


def participant_update(participants: list[models.ParticipantInfo]) -> rtc.SignalResponse:
    return rtc.SignalResponse(update=rtc.ParticipantUpdate(participants=participants))


def participant_left(participant: models.ParticipantInfo) -> rtc.SignalResponse:
    gone = models.ParticipantInfo()
    gone.CopyFrom(participant)
    gone.state = models.ParticipantInfo.DISCONNECTED
    del gone.tracks[:]
    return participant_update([gone])


def track_unpublished(track_sid: str) -> rtc.SignalResponse:
    return rtc.SignalResponse(track_unpublished=rtc.TrackUnpublishedResponse(track_sid=track_sid))


def offer(sdp: str, offer_id: int) -> rtc.SignalResponse:
    """An offer on the subscriber PC (the only offers the endpoint makes)."""
    return rtc.SignalResponse(offer=rtc.SessionDescription(type="offer", sdp=sdp, id=offer_id))


def answer(sdp: str, offer_id: int) -> rtc.SignalResponse:
    return rtc.SignalResponse(answer=rtc.SessionDescription(type="answer", sdp=sdp, id=offer_id))


def track_published(request: rtc.AddTrackRequest, track_sid: str, mime_type: str) -> rtc.SignalResponse:
    if not track_sid.startswith("TR_"):
        raise ValueError("track sids start with TR_ (the SDKs require it)")
    info = models.TrackInfo(
        sid=track_sid,
        type=request.type,
        name=request.name,
        muted=request.muted,
        width=request.width,
        height=request.height,
        simulcast=len(request.layers) > 1,
        source=request.source,
        layers=list(request.layers),
        mime_type=mime_type,
        codecs=[models.SimulcastCodecInfo(mime_type=mime_type, cid=request.cid, layers=list(request.layers))],
        stream=request.stream,
    )
    return rtc.SignalResponse(track_published=rtc.TrackPublishedResponse(cid=request.cid, track=info))


def pong_response(ping_timestamp: int, now_ms: int) -> rtc.SignalResponse:
    return rtc.SignalResponse(pong_resp=rtc.Pong(last_ping_timestamp=ping_timestamp, timestamp=now_ms))


def legacy_pong(now_ms: int) -> rtc.SignalResponse:
    return rtc.SignalResponse(pong=now_ms)


def refresh_token(token: str) -> rtc.SignalResponse:
    return rtc.SignalResponse(refresh_token=token)


def leave(reason: int, *, reconnect: bool = False) -> rtc.SignalResponse:
    """`reconnect=False`: go away and do not come back. True: do a full rejoin (refused resume)."""
    action = rtc.LeaveRequest.RECONNECT if reconnect else rtc.LeaveRequest.DISCONNECT
    return rtc.SignalResponse(leave=rtc.LeaveRequest(can_reconnect=reconnect, reason=reason, action=action))  # type: ignore[arg-type]


def refuse_resume() -> rtc.SignalResponse:
    """aiortc cannot restart ICE, so every resume is answered with "rejoin from scratch"."""
    return leave(models.DisconnectReason.STATE_MISMATCH, reconnect=True)


def request_refused(request_id: int, message: str) -> rtc.SignalResponse:
    """A RequestResponse carrying a human-readable reason (logged by newer SDKs)."""
    return rtc.SignalResponse(
        request_response=rtc.RequestResponse(
            request_id=request_id, reason=rtc.RequestResponse.UNSUPPORTED_TYPE, message=message
        )
    )


def mime_for(codec_name: str, kind: int) -> str:
    prefix = "audio" if kind == models.TrackType.AUDIO else "video"
    return f"{prefix}/{codec_name}"
