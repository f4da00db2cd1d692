"""The stream endpoints' response models, built from a `Stream` and its `StreamFacts`.

The wire format of GET /streams/{id} (CONTRACT §3) lives here and in api/schemas.py only; the stream
layer hands over plain typed values.
"""

from __future__ import annotations

from livesight.api.schemas import PulledSource, StreamStatus
from livesight.core.records import SourceSpec
from livesight.streams.stream import Stream, StreamFacts


def source_spec(source: PulledSource | None) -> SourceSpec | None:
    return None if source is None else SourceSpec(source.type, source.url)


def pulled_source(source: SourceSpec | None) -> PulledSource | None:
    return None if source is None else PulledSource(type=source.type, url=source.url)


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
        width=facts.width,
        height=facts.height,
        codec=facts.codec,
        publisher_connected=facts.publisher_connected,
        last_error=facts.last_error,
        last_error_at_ms=facts.last_error_at_ms,
        source=pulled_source(stream.source),
    )
