"""The stream endpoints' response models, built from a `Stream` and its `StreamFacts`.

The wire format of GET /streams/{id} (CONTRACT §3) lives here and in api/schemas.py only; the stream
layer hands over plain typed values.
"""

from __future__ import annotations

from livesight.api.schemas import LiveKitRoomSourceView, PulledSource, SourceRequest, StreamStatus, check_source_request
from livesight.core.records import RoomCredentials, SourceSpec
from livesight.streams.stream import Stream, StreamFacts


def source_spec(source: SourceRequest | PulledSource | None) -> SourceSpec | None:
    if source is None:
        return None
    if isinstance(source, SourceRequest):
        source = check_source_request(source)
    if isinstance(source, SourceRequest) and source.type == "livekit_room":
        credentials = RoomCredentials(token=source.token, api_key=source.api_key, api_secret=source.api_secret)
        return SourceSpec(
            "livekit_room",
            source.url,
            room=source.room,
            participant=source.participant,
            track_source=source.track_source,
            credentials=credentials,
        )
    return SourceSpec(source.type, source.url)


def pulled_source(source: SourceSpec | None) -> PulledSource | LiveKitRoomSourceView | None:
    """The source as GET /streams/{id} shows it (a livekit_room source without its credentials)."""
    if source is None:
        return None
    if source.type == "livekit_room":
        return LiveKitRoomSourceView(
            type="livekit_room",
            url=source.url,
            room=source.room,
            participant=source.participant,
            track_source=source.track_source,
        )
    return PulledSource(type=source.type, url=source.url)


def stream_status(stream: Stream, facts: StreamFacts) -> StreamStatus:
    """GET /streams/{id}: the CONTRACT §3 fields, plus livesight's own."""
    buffer = facts.buffer
    return StreamStatus(
        id=stream.id,
        state=stream.state,
        stream_time_ms=buffer.stream_time_ms,
        first_frame_at_ms=buffer.first_frame_at_ms,
        last_frame_at_ms=buffer.last_frame_at_ms,
        last_frame_index=buffer.last_frame_index,
        first_available_frame_at_ms=buffer.first_available_frame_at_ms,
        first_available_frame_index=buffer.first_available_frame_index,
        created_at_ms=stream.created_at_ms,
        recent_fps=buffer.recent_fps,
        retained_frame_count=buffer.retained_frame_count,
        evicted_frame_count=buffer.evicted_frame_count,
        expires_at_ms=stream.expires_at_ms if stream.active else None,
        ttl_seconds=stream.ttl_seconds,
        ended_at_ms=stream.ended_at_ms,
        end_reason=stream.end_reason,
        audio=False,
        retained_bytes=buffer.retained_bytes,
        keyframe_interval_ms=buffer.keyframe_interval_ms,
        gaps=buffer.gaps,
        width=facts.width,
        height=facts.height,
        codec=facts.codec,
        publisher_connected=facts.publisher_connected,
        last_error=facts.last_error,
        last_error_at_ms=facts.last_error_at_ms,
        source=pulled_source(stream.source),
    )
