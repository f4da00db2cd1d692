"""Resolve the `ovs://` parts of a chat request into frames (CONTRACT §5, §6).

The draft's URIs were parsed when it was built (400s before lookups); here each stream is looked up
and its window is taken once, so every relative anchor of one request sees the same live edge. A
frame evicted between the snapshot and reading its pixels is 410 `frame_evicted`; encoded frames are
decoded by the buffer's reader (422 `frame_undecodable` after lost data, 503 `decoder_busy`). Each `RefPart`
becomes a `MediaPart`; the result is the backends' `ChatRequest`.
"""

from __future__ import annotations

from typing import Protocol

from livesight.backends.request import ChatRequest, MediaPart, Part
from livesight.buffer.ring import FrameWindow
from livesight.core.errors import SegmentInvalid, StreamNotFound, StreamUnauthorized, TooManyFrames
from livesight.core.media import MediaFrame, MediaItem
from livesight.resolve.draft import ChatDraft, DraftPart, RefPart
from livesight.resolve.select import select_frame, select_segment
from livesight.resolve.uri import FrameRef, SegmentRef, shown
from livesight.settings import ModelConfig
from livesight.streams.directory import StreamDirectory
from livesight.streams.stream import Stream


class RemoteWindows(Protocol):
    """Another node's stream as a window (cluster mode: api/internal.py fetches it from the owner)."""

    async def window(self, stream: Stream) -> FrameWindow | None: ...


class ChatResolver:
    """`max_request_frames` bounds the frames of one request, all parts together (CONTRACT §6): a frame
    referenced by several parts is sent, and counted, each time; an inline (non-ovs) image counts one."""

    def __init__(
        self,
        registry: StreamDirectory,
        max_segment_frames: int,
        max_request_frames: int | None = None,
        *,
        remote: RemoteWindows | None = None,
    ) -> None:
        self._registry = registry
        self._remote = remote  # where the registry has no window (a stream another node owns)
        self._max_segment_frames = max_segment_frames
        self._max_request_frames = max_request_frames or max_segment_frames

    async def resolve(self, draft: ChatDraft, owner: str, model: ModelConfig) -> ChatRequest:
        draft.check_capabilities(model)
        refs = list(draft.refs())
        windows: dict[str, FrameWindow | None] = {}
        for ref in refs:
            if ref.stream_id not in windows:
                stream = self._stream(ref, owner)
                window = self._registry.window(stream)
                if window is None and self._remote is not None:
                    window = await self._remote.window(stream)
                windows[ref.stream_id] = window
        selected = {id(ref): self._select(windows[ref.stream_id], ref, model) for ref in refs}
        self._check_budget(draft.inline_media_count() + sum(len(indexes) for indexes in selected.values()))

        async def resolved(part: DraftPart) -> Part:
            if not isinstance(part, RefPart):
                return part
            ref = part.ref
            window = windows[ref.stream_id]
            assert window is not None  # a selection from an empty window raised already
            return MediaPart(
                MediaItem(
                    kind="image" if isinstance(ref, FrameRef) else "video",
                    url=ref.url,
                    frames=await _frames(window, ref, selected[id(ref)]),
                    stream_id=ref.stream_id,
                    max_fps=ref.max_fps if isinstance(ref, SegmentRef) else None,
                )
            )

        messages = tuple([m.with_parts(tuple([await resolved(p) for p in m.parts])) for m in draft.messages])
        return ChatRequest(messages, draft.params, include_usage=draft.include_usage)

    def _select(self, window: FrameWindow | None, ref: FrameRef | SegmentRef, model: ModelConfig) -> tuple[int, ...]:
        if isinstance(ref, FrameRef):
            return (select_frame(window, ref),)
        indexes = select_segment(window, ref, self._max_segment_frames).indexes
        if len(indexes) > model.max_frames:
            raise SegmentInvalid(
                f"{shown(ref.url)}: the segment holds {len(indexes)} frames at max_fps={ref.max_fps:g}; "
                f"model {model.id} takes at most {model.max_frames} frames per video (max_frames): "
                "lower max_fps or shorten the segment"
            )
        return indexes

    def _check_budget(self, count: int) -> None:
        if count > self._max_request_frames:
            raise TooManyFrames(
                f"this request would send {count} frames; at most {self._max_request_frames} frames may be sent in "
                "one request, all image_url and video_url parts together (max_request_frames; a frame referenced "
                "by several parts counts each time): send fewer parts, or lower max_fps or shorten segments"
            )

    def _stream(self, ref: FrameRef | SegmentRef, owner: str) -> Stream:
        try:
            stream = self._registry.get(ref.stream_id, owner)
        except StreamNotFound:
            raise StreamNotFound(
                f"{shown(ref.url)}: stream {ref.stream_id} not found (unknown, expired or deleted)"
            ) from None
        except StreamUnauthorized:
            raise StreamUnauthorized(
                f"{shown(ref.url)}: stream {ref.stream_id} belongs to another API key", stream_id=ref.stream_id
            ) from None
        if not stream.active:
            raise StreamNotFound(f"{shown(ref.url)}: stream {ref.stream_id} has ended ({stream.end_reason})")
        return stream


async def _frames(window: FrameWindow, ref: FrameRef | SegmentRef, indexes: tuple[int, ...]) -> tuple[MediaFrame, ...]:
    """The selected frames with their JPEGs (stored, or decoded on demand by the buffer's reader)."""
    jpegs = await window.jpegs(indexes, shown(ref.url))
    infos = [window.info(index) for index in indexes]
    return tuple(
        MediaFrame(jpeg, info.width, info.height, info.index, info.timestamp_ms, info.arrived_at_ms)
        for jpeg, info in zip(jpegs, infos, strict=True)
    )
