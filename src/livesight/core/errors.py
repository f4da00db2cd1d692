"""The error tree. Each class carries its HTTP status, error type and code (CONTRACT.md §2).

Code raises these; `livesight.api.errors` is the one place that turns them into responses: the three
envelopes, and the status + plain-text body the LiveKit SDKs read from a refused `/rtc` connection.
Third-party exceptions are translated into these at the adapter that imports the library.

Two roots: `LivesightError` for everything a client may see, `OperatorError` for what only the person
running the server or a CLI sees (bad configuration, a publisher CLI that cannot publish). No other
module of ours defines an exception class (tests/core/test_error_tree.py checks).
"""

from __future__ import annotations

from typing import ClassVar, TypedDict

from livesight.core.jsontypes import JsonValue


class UpstreamDetails(TypedDict):
    """The `upstream` object of a chat error envelope (CONTRACT §2): which upstream failed and how."""

    provider: str
    status: int | None
    body: JsonValue  # the parsed JSON body if it fits 4 KiB, else its truncated text
    rate_limits: dict[str, str] | None  # x-ratelimit-* and retry-after headers, lower-cased


class LivesightError(Exception):
    """Base of every error a client may see. `message` is safe to show to the caller."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "internal_error"
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    @property
    def upstream(self) -> UpstreamDetails | None:
        return None

    def code_for_envelope(self) -> str:
        return self.code

    def status_for_envelope(self) -> int:
        return self.status


class OperatorError(Exception):
    """Base of errors only the operator sees (configuration, CLIs); the message says what and why."""


class ConfigError(OperatorError):
    """The configuration is invalid; the message says which setting and why."""


class PublishError(OperatorError):
    """The publisher CLI could not publish; the message says why and is safe to print."""


class WeightsUnavailable(OperatorError):
    """Model weights could not be downloaded or verified; the message says what to fetch and where to put it."""


class NeedsDecode(OperatorError):
    """A pulled source's packets cannot be stored one per picture in display order (B-frames, hidden
    VP8 frames): the puller reopens it on the decode-to-JPEG path (ingest/pull_packets.py). Never reaches a
    client; the log line that says which path a source took is the operator's."""


class InternalError(LivesightError):
    """Generic 500; the message never carries internals."""


# --- auth and request shape -------------------------------------------------------------------


class Unauthorized(LivesightError):
    status = 401
    type = "validation_error"
    code = "unauthorized"


class AdminRequired(LivesightError):
    """A valid API key that is not one of `admin_key_ids`, on an admin endpoint."""

    status = 403
    type = "validation_error"
    code = "admin_required"


class RequestTooLarge(LivesightError):
    status = 413
    type = "validation_error"
    code = "request_too_large"


class RequestInvalid(LivesightError):
    """A request that parsed but asks for something impossible (400)."""

    status = 400
    type = "validation_error"
    code = "invalid_request"


class TooManyFrames(RequestInvalid):
    """A chat request that would send more frames than `max_request_frames` allows (all parts together)."""

    code = "too_many_frames"


class TooManyImages(RequestInvalid):
    """A chat request that would send a model more image parts than its `max_images`."""

    code = "too_many_images"


class RateLimited(LivesightError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class ServerBusy(LivesightError):
    """The server is at its connection limit (`http_max_connections`); the client should retry shortly."""

    status = 503
    type = "internal_error"
    code = "server_busy"


class DecoderBusy(ServerBusy):
    """Every on-demand decoder is busy and the decode queue is full (`decode_queue_limit`)."""

    code = "decoder_busy"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": "1"})


class ClusterUnavailable(LivesightError):
    """The shared cluster state (Redis) cannot be reached, so a change a client asked for cannot be made
    cluster-wide; the client should retry shortly (docs/scale-out.md)."""

    status = 503
    type = "internal_error"
    code = "cluster_unavailable"


class OutboundRefused(LivesightError):
    """The outbound policy (core/outbound.py) refuses this destination. The message names the reason for
    the server log; a client-facing caller shows a generic message instead (see core/outbound.py)."""

    status = 400
    type = "validation_error"
    code = "outbound_refused"


# --- embedded ingest: refusals of a LiveKit publisher at /rtc (CONTRACT §8) ----------------------


class IngestRefused(LivesightError):
    """A publisher connection that must not proceed. The /rtc routes send `status` and the message as a
    plain-text body (what livekit-client and the Rust SDK show); 401 stops their retries."""

    status = 401
    type = "validation_error"
    code = "ingest_refused"

    @property
    def reason(self) -> str:
        return self.message


class PublisherUnauthorized(IngestRefused):
    """No token, or the token's stream is not active."""

    code = "publisher_unauthorized"


class TokenRejected(PublisherUnauthorized):
    """A token that must not connect (bad signature, expired, wrong grant or room)."""

    code = "token_rejected"


class PublisherConflict(IngestRefused):
    """The stream already has a connected publisher (one per stream)."""

    status = 409
    code = "publisher_conflict"


class SignalError(IngestRefused):
    """A malformed signalling message or join request."""

    status = 400
    code = "signal_invalid"


# --- streams ------------------------------------------------------------------------------------


class StreamError(LivesightError):
    type = "stream_error"


class StreamNotFound(StreamError):
    status = 404
    code = "stream_not_found"


class StreamUnauthorized(StreamError):
    """The stream exists but belongs to another owner. Stream endpoints report it as 404."""

    status = 403
    code = "stream_unauthorized"

    def __init__(self, message: str, *, stream_id: str) -> None:
        super().__init__(message)
        self.stream_id = stream_id


class StreamLimitExceeded(StreamError):
    status = 429
    code = "stream_limit_exceeded"


class SourceUnsupported(StreamError):
    status = 400
    code = "source_unsupported"


class StreamUrlInvalid(StreamError):
    status = 400
    code = "stream_url_invalid"


class QueryParamInvalid(StreamError):
    status = 400
    code = "query_param_invalid"


class FrameEvicted(StreamError):
    status = 410
    code = "frame_evicted"


class FrameUndecodable(StreamError):
    """A received frame that cannot be decoded to the right pixels: data before it in its GOP was lost
    in transit (or is corrupt). The frames after the next keyframe are fine."""

    status = 422
    code = "frame_undecodable"


class FrameNotYetProduced(StreamError):
    status = 409
    code = "frame_not_yet_produced"


class SegmentEmpty(StreamError):
    status = 404
    code = "segment_empty"


class SegmentInvalid(StreamError):
    status = 400
    code = "segment_invalid"


# --- watches (docs/watches.md) ---------------------------------------------------------------------


class WatchNotFound(LivesightError):
    """An unknown watch, another key's watch, or an ended watch past its retention."""

    status = 404
    type = "validation_error"
    code = "watch_not_found"


class WatchLimitExceeded(LivesightError):
    """The key has `max_active_watches_per_key` watches that have not ended."""

    status = 429
    type = "rate_limit_error"
    code = "watch_limit_exceeded"


# --- models and upstreams ---------------------------------------------------------------------


class ModelVideoUnsupported(LivesightError):
    status = 400
    type = "validation_error"
    code = "model_video_unsupported"


class ModelImageUnsupported(LivesightError):
    status = 400
    type = "validation_error"
    code = "model_image_unsupported"


class ModelUnavailable(LivesightError):
    """A model id this server does not serve (404, Overshoot's `model_unavailable`)."""

    status = 404
    type = "provider_error"
    code = "model_unavailable"


class ModelNotReady(ModelUnavailable):
    """A configured model that cannot answer now: its upstream failed its health probe, or a built-in
    failed to load. 503, not 404: the id is known and the fault is on the serving side, and a retry may
    succeed (`Retry-After` says when the next probe can change the answer, when there is one)."""

    status = 503
    code = "model_not_ready"

    def __init__(self, message: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_s)} if retry_after_s is not None else None)


class ModelLoading(ModelNotReady):
    """An in-process model that is being made ready: its weights are downloading (the message says how far,
    GET /v1/models has the numbers) or it is loading. 503 with `Retry-After`: it will answer later."""

    code = "model_loading"


class ModelBusy(LivesightError):
    """An in-process model whose queue is full (one request runs, `queue_limit` wait): 503 with `Retry-After`
    rather than a growing backlog."""

    status = 503
    type = "provider_error"
    code = "model_busy"

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_s)})


class ModelFailed(LivesightError):
    """A built-in (in-process) model failed on one input; the message is safe to show.

    The offline OCR model catches these per frame and says so in its answer rather than failing the request.
    """

    status = 500
    type = "internal_error"
    code = "model_failed"


class ImageUndecodable(RequestInvalid):
    """Image bytes that are not a decodable picture (corrupt, truncated, an unknown format, absurdly large)."""

    code = "image_undecodable"


class UpstreamError(LivesightError):
    """An upstream model server failed. `provider` names the backend (e.g. the model's base URL host)."""

    status = 502
    type = "upstream_error"
    code = "upstream_request_failed"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        upstream_status: int | None = None,
        body: JsonValue = None,
        rate_limits: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, headers=headers)
        self.provider = provider
        self.upstream_status = upstream_status
        self.body = body
        self.rate_limits = rate_limits

    @property
    def upstream(self) -> UpstreamDetails | None:
        return {
            "provider": self.provider,
            "status": self.upstream_status,
            "body": self.body,
            "rate_limits": self.rate_limits,
        }


class UpstreamHTTPError(UpstreamError):
    """Upstream answered non-2xx: 502 `upstream_http_<status>`, except upstream 429 stays 429."""

    def code_for_envelope(self) -> str:
        return f"upstream_http_{self.upstream_status}"

    def status_for_envelope(self) -> int:
        return 429 if self.upstream_status == 429 else 502


class UpstreamBusy(LivesightError):
    """The bytes of request bodies being sent to upstreams are at `upstream_inflight_mb`: try again soon."""

    status = 503
    type = "provider_error"
    code = "upstream_busy"


class UpstreamBodyTooLarge(LivesightError):
    """One request whose upstream body alone is larger than `upstream_inflight_mb` (waiting cannot help)."""

    status = 413
    type = "validation_error"
    code = "upstream_body_too_large"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


class UpstreamRequestFailed(UpstreamError):
    status = 502
    code = "upstream_request_failed"
