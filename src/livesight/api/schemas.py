"""Wire models of the non-chat endpoints and of the three error envelopes (CONTRACT §2, §3, §7)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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


class StreamCreateRequest(BaseModel):
    """Empty, `{}`, or a server-pulled source. Unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    source: PulledSource | None = None


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
    width: int | None
    height: int | None
    codec: str | None
    publisher_connected: bool
    last_error: str | None
    last_error_at_ms: int | None
    source: PulledSource | None


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
