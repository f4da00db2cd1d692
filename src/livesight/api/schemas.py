"""Wire models of the non-chat endpoints and of the three error envelopes (CONTRACT §2, §3, §7)."""

from __future__ import annotations

from typing import Annotated, Literal

import jwt
from pydantic import BaseModel, ConfigDict, Field

from livesight.core.errors import SourceUnsupported
from livesight.core.jsontypes import JsonValue

# --- error envelopes ------------------------------------------------------------------------------


class DetailError(BaseModel):
    """Envelope 1: stream, key and other non-chat endpoints. (Off the documented operations, where an
    OpenAI-style client may land, e.g. an unknown route under /v1, it also carries `message`, the same
    text, because the `openai` SDK shows `message` in its exception text.)"""

    detail: str


class UpstreamInfo(BaseModel):
    provider: str
    status: int | None
    body: JsonValue = Field(description="Upstream response body, bounded to 4 KiB")
    rate_limits: dict[str, str] | None = None


class ChatErrorBody(BaseModel):
    message: str
    type: Literal[
        "stream_error",
        "validation_error",
        "provider_error",
        "upstream_error",
        "billing_error",
        "rate_limit_error",
        "internal_error",
    ]
    code: str
    upstream: UpstreamInfo | None = None


class ChatErrorDetail(BaseModel):
    error: ChatErrorBody


class ChatError(BaseModel):
    """Envelope 2: /chat/completions. `detail.error` is Overshoot's; `error` is the same object, where the
    `openai` SDK reads the message it shows in its exception text."""

    detail: ChatErrorDetail
    error: ChatErrorBody


class ValidationErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorEnvelope(BaseModel):
    """Envelope 3: request validation (422) on any JSON body."""

    error: Literal["validation_error"]
    message: str
    details: list[ValidationErrorItem]


# --- streams ----------------------------------------------------------------------------------------


class PulledSource(BaseModel):
    type: Literal["rtsp", "hls", "file"]
    url: str = Field(min_length=1, max_length=4096)


_ROOM_FIELDS = {
    "url": "The LiveKit server, ws:// or wss:// (what a LiveKit client SDK connects to)",
    "room": "The room to join. Required with `api_key`; with `token`, the token's room (they must agree)",
    "participant": "Follow this participant identity's track; default: any participant",
    "track_source": "Follow the `camera` or the `screen_share` track; default: the first video track",
}


class SourceRequest(BaseModel):
    """A server-pulled source: `rtsp`, `hls` or `file` (`url` only), or `livekit_room`: join a room on a
    LiveKit server you run, as a hidden, subscribe-only participant, and buffer one video track of it
    (docs/ingest.md). A `livekit_room` source takes `token` (a LiveKit access token for that room that
    may subscribe) or `api_key` + `api_secret` (livesight mints a hidden, subscribe-only token for
    `room`); the credentials are never shown again, never logged and never stored."""

    type: Literal["rtsp", "hls", "file", "livekit_room"]
    url: str = Field(
        min_length=1,
        max_length=4096,
        description="rtsp:// or rtsps:// (rtsp), http(s):// (hls), a file name (file); livekit_room: "
        + _ROOM_FIELDS["url"],
    )
    room: str | None = Field(None, min_length=1, max_length=256, description="livekit_room: " + _ROOM_FIELDS["room"])
    token: str | None = Field(None, min_length=1, max_length=16384, description="livekit_room: a LiveKit access token")
    api_key: str | None = Field(
        None, min_length=1, max_length=256, description="livekit_room: API key (with api_secret)"
    )
    api_secret: str | None = Field(None, min_length=1, max_length=1024, description="livekit_room: API secret")
    participant: str | None = Field(
        None, min_length=1, max_length=256, description="livekit_room: " + _ROOM_FIELDS["participant"]
    )
    track_source: Literal["camera", "screen_share"] | None = Field(
        None, description="livekit_room: " + _ROOM_FIELDS["track_source"]
    )


def check_source_request(source: SourceRequest) -> SourceRequest:
    """The fields that go together (a 400 naming them, like a source the server cannot open: the
    schema cannot say "token, or api_key and api_secret"); with a token and no `room`, its room."""
    room_fields = ("room", "token", "api_key", "api_secret", "participant", "track_source")
    if source.type != "livekit_room":
        given = [name for name in room_fields if getattr(source, name) is not None]
        if given:
            raise SourceUnsupported(f"{', '.join(f'`{n}`' for n in given)}: only a livekit_room source takes these")
        return source
    if source.token is not None:
        if source.api_key is not None or source.api_secret is not None:
            raise SourceUnsupported("give either `token` or `api_key` and `api_secret`, not both")
        granted = token_room(source.token)
        room = source.room or granted
        if granted is not None and granted != room:
            raise SourceUnsupported("`room` is not the room `token` grants")
        if room is None:
            raise SourceUnsupported("`token` names no room: pass `room`")
        return source.model_copy(update={"room": room})
    if source.api_key is None or source.api_secret is None:
        raise SourceUnsupported("a livekit_room source needs `token`, or `api_key` and `api_secret`")
    if source.room is None:
        raise SourceUnsupported("`room` is required with `api_key` and `api_secret`")
    return source


def token_room(token: str) -> str | None:
    """The room a LiveKit access token grants (read, not verified: the LiveKit server verifies it).
    SourceUnsupported when it is not a JWT at all."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise SourceUnsupported("`token` is not a LiveKit access token (a JWT)") from None
    video = claims.get("video") if isinstance(claims, dict) else None
    room = video.get("room") if isinstance(video, dict) else None
    return room if isinstance(room, str) and room else None


class LiveKitRoomSourceView(BaseModel):
    """A `livekit_room` source as GET /streams/{id} shows it: never its credentials."""

    type: Literal["livekit_room"]
    url: str = Field(description=_ROOM_FIELDS["url"])
    room: str | None
    participant: str | None = Field(description=_ROOM_FIELDS["participant"])
    track_source: Literal["camera", "screen_share"] | None = Field(description=_ROOM_FIELDS["track_source"])


SourceView = Annotated[PulledSource | LiveKitRoomSourceView, Field(discriminator="type")]


class StreamCreateRequest(BaseModel):
    """Empty, `{}`, or a server-pulled source. Unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    source: SourceRequest | None = None


class Publish(BaseModel):
    type: Literal["livekit"] = "livekit"
    url: str = Field(description="LiveKit URL, ws:// or wss://")
    token: str = Field(description="LiveKit access token (JWT) allowed to publish video into this room")


class View(BaseModel):
    url: str = Field(description="LiveKit URL, ws:// or wss://")
    token: str = Field(description="LiveKit access token (JWT) that can only subscribe, only in this stream's room")
    expires_in_seconds: int


class ViewerToken(BaseModel):
    view: View


class StreamCreated(BaseModel):
    id: str = Field(description="The stream_id (UUID)")
    state: Literal["active"]
    publish: Publish | None
    expires_at_ms: int
    ttl_seconds: int


class StreamStatus(BaseModel):
    id: str
    state: Literal["active", "ended"]
    stream_time_ms: int
    first_frame_at_ms: int | None
    last_frame_at_ms: int | None
    last_frame_index: int | None
    first_available_frame_at_ms: int | None
    first_available_frame_index: int | None
    created_at_ms: int
    recent_fps: float
    retained_frame_count: int
    evicted_frame_count: int
    expires_at_ms: int | None
    ttl_seconds: int
    ended_at_ms: int | None
    end_reason: Literal["expired", "deleted", "source_failed", "node_lost"] | None
    audio: bool
    # livesight's own fields
    retained_bytes: int
    keyframe_interval_ms: int | None
    gaps: int = Field(
        description="Times the stream went on after its node was lost (with `livekit_url`, several nodes): "
        "the frames of each gap are gone (read as evicted), indexes continue past them"
    )
    width: int | None
    height: int | None
    codec: str | None
    publisher_connected: bool
    last_error: str | None
    last_error_at_ms: int | None
    source: SourceView | None


class Keepalive(BaseModel):
    id: str
    expires_at_ms: int
    ttl_seconds: int
    stream_time_ms: int
    publish: Publish | None


class StreamDeleted(BaseModel):
    id: str
    deleted: Literal[True]


class StreamList(BaseModel):
    """One page of the caller's streams: active first (newest created first), then tombstones
    (newest ended first)."""

    object: Literal["list"] = "list"
    data: list[StreamStatus]
    has_more: bool
    next_after: str | None = Field(description="Pass as `after` to get the next page; null on the last page")


# --- models -----------------------------------------------------------------------------------------


class ModelCapabilities(BaseModel):
    image: bool
    video: bool
    max_frames: int


class DownloadProgress(BaseModel):
    """How far the pull of an in-process model's weights is (while `status` is `downloading`)."""

    file: str = Field(description="The file being fetched now.")
    done_bytes: int
    total_bytes: int
    speed_bps: float = Field(description="Bytes per second, averaged over the pull so far.")
    eta_s: float | None = Field(description="Seconds left at that speed (null until it is known).")


class ReplicaCard(BaseModel):
    """One upstream replica of a model with `replicas` (its name only: no URL, no key)."""

    name: str = Field(description="The replica's `name` (default: its base URL's host:port).")
    status: Literal["up", "down"] = Field(
        description="down: it failed a request (connection error, 5xx) or its health probe within "
        "`replica_down_s`; its streams are served by their next replica meanwhile."
    )
    in_flight: int = Field(description="Requests this node has in flight to it now.")
    down_for_s: float | None = Field(None, description="While down: seconds until it gets its streams back.")
    last_error: str | None = Field(None, description="Why it was last marked down.")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    status: Literal["ready", "unavailable", "not downloaded", "downloading", "downloaded", "loading"] = Field(
        description="ready; unavailable (it fails its probe, or cannot load); an in-process model is `not "
        "downloaded` until its first request pulls its weights (`downloading`, see `download`), then `loading`; "
        "`downloaded`: its weights are here and it loads on its first request."
    )
    capabilities: ModelCapabilities
    backend: str
    download: DownloadProgress | None = Field(None, description="While `downloading`: bytes, speed and ETA.")
    replicas: list[ReplicaCard] | None = Field(
        None, description="A model served by several upstreams: each replica's state (null for one upstream)."
    )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    status: Literal["ok"]


class ClusterNode(BaseModel):
    """One node as its last heartbeat described it."""

    node_id: str
    alive: bool = Field(description="Heartbeat seen within 3 cluster ticks (`cluster_tick_ms`)")
    last_seen_ms: int
    streams: int = Field(description="Active streams this node owns (serves)")
    publishers: int = Field(description="Of those, streams with a connected publisher")
    retained_frames: int = Field(description="Frames held in this node's buffers: its load")
    started_at_ms: int | None = None
    capacity: int | None = Field(None, description="Active streams it takes before placement prefers others")
    draining: bool = Field(False, description="Shutting down (SIGTERM): no new streams are placed on it")


class ClusterView(BaseModel):
    """GET /v1/cluster: every node that has sent a heartbeat, this one included."""

    node_id: str = Field(description="The node that answered")
    redis: bool = Field(description="True when this node runs with shared state in Redis")
    nodes: list[ClusterNode]
