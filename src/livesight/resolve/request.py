"""Resolve the `ovs://` parts of a chat request into frames (CONTRACT §5, §6).

All URIs are parsed first (400s before lookups); then each stream is looked up and its window is
taken once, so every relative anchor of one request sees the same live edge. A frame evicted
between the snapshot and reading its pixels is 410 `frame_evicted`. Resolved parts are replaced,
in a copy of the messages, by `MediaItem`s for the backend to render.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from livesight.buffer.ring import FrameWindow
from livesight.core.errors import (
    FrameEvicted,
    ModelImageUnsupported,
    ModelVideoUnsupported,
    SegmentInvalid,
    StreamNotFound,
    StreamUnauthorized,
    TooManyFrames,
)
from livesight.core.media import MediaFrame, MediaItem
from livesight.resolve.select import select_frame, select_segment
from livesight.resolve.uri import FrameRef, SegmentRef, is_ovs_url, parse_frame_uri, parse_segment_uri, shown
from livesight.settings import ModelConfig
from livesight.streams.directory import StreamDirectory as StreamRegistry
from livesight.streams.stream import Stream


@dataclass(slots=True)
class ResolvedRequest:
    messages: list[dict[str, Any]]
    frames: list[dict[str, Any]] = field(default_factory=list)  # the `overshoot.frames` report
    newest_arrival_ms: int | None = None


def media_parts(messages: list[dict[str, Any]]) -> Iterator[tuple[int, int, str, Any]]:
    """(message index, part index, part type, url) of every image_url / video_url part."""
    for mi, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for pi, part in enumerate(content):
            if isinstance(part, dict) and part.get("type") in ("image_url", "video_url"):
                ref = part.get(part["type"])
                yield mi, pi, part["type"], ref.get("url") if isinstance(ref, dict) else ref


class ChatResolver:
    """`max_request_frames` bounds the frames of one request, all parts together (CONTRACT §6): a frame
    referenced by several parts is sent, and counted, each time; an inline (non-ovs) image counts one."""

    def __init__(
        self, registry: StreamRegistry, max_segment_frames: int, max_request_frames: int | None = None
    ) -> None:
        self._registry = registry
        self._max_segment_frames = max_segment_frames
        self._max_request_frames = max_request_frames or max_segment_frames

    async def resolve(self, messages: list[dict[str, Any]], owner: str, model: ModelConfig) -> ResolvedRequest:
        refs: list[tuple[int, int, FrameRef | SegmentRef]] = []
        inline = 0
        for mi, pi, kind, url in media_parts(messages):
            if kind == "video_url" and not model.video:
                raise ModelVideoUnsupported(
                    f"model {model.id} does not accept video: video_url {shown(str(url))} cannot be sent to it "
                    "(ask about single frames with image_url, or pick a model with video support)"
                )
            if kind == "image_url" and not model.image:
                raise ModelImageUnsupported(f"model {model.id} does not accept images: image_url {shown(str(url))}")
            if not is_ovs_url(url):
                inline += 1
                continue
            refs.append((mi, pi, parse_frame_uri(url) if kind == "image_url" else parse_segment_uri(url)))
        if not refs:
            self._check_budget(inline)
            return ResolvedRequest(messages)
        windows: dict[str, FrameWindow | None] = {}
        for _, _, ref in refs:
            if ref.stream_id not in windows:
                windows[ref.stream_id] = self._registry.window(self._stream(ref, owner))
        selected = [(mi, pi, ref, self._select(windows[ref.stream_id], ref, model)) for mi, pi, ref in refs]
        self._check_budget(inline + sum(len(indexes) for *_, indexes in selected))
        copies: dict[int, list[Any]] = {}
        resolved = ResolvedRequest(messages=list(messages))
        pending: list[tuple[MediaItem, list[tuple[int, Any]]]] = []
        for mi, pi, ref, indexes in selected:
            window = windows[ref.stream_id]
            assert window is not None
            frames, payloads = self._frames(window, ref, indexes)
            item = MediaItem(
                kind="image" if isinstance(ref, FrameRef) else "video",
                url=ref.url,
                frames=frames,
                stream_id=ref.stream_id,
                max_fps=ref.max_fps if isinstance(ref, SegmentRef) else None,
            )
            if payloads:
                pending.append((item, payloads))
            content = copies.get(mi)
            if content is None:
                content = copies[mi] = list(messages[mi]["content"])
                resolved.messages[mi] = {**messages[mi], "content": content}
            content[pi] = item
            resolved.frames.append(
                {
                    "url": ref.url,
                    "stream_id": ref.stream_id,
                    "frame_indexes": [f.index for f in frames],
                    "timestamps_ms": [f.timestamp_ms for f in frames],
                }
            )
            newest = frames[-1].arrived_at_ms
            if newest is not None and (resolved.newest_arrival_ms is None or newest > resolved.newest_arrival_ms):
                resolved.newest_arrival_ms = newest
        if pending:
            await self._decode_pending(resolved, pending)
        return resolved

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

    def _frames(
        self, window: FrameWindow, ref: FrameRef | SegmentRef, indexes: tuple[int, ...]
    ) -> tuple[tuple[MediaFrame, ...], list[tuple[int, Any]]]:
        frames: list[MediaFrame] = []
        expensive: list[tuple[int, Any]] = []
        for pos, index in enumerate(indexes):
            payload = window.payload(index)
            if payload is None:
                raise FrameEvicted(f"{shown(ref.url)}: frame {index} was evicted while the request was resolved")
            info = window.info(index)
            jpeg = payload.jpeg() if payload.jpeg_is_cheap else b""
            if not payload.jpeg_is_cheap:
                expensive.append((pos, payload))
            frames.append(MediaFrame(jpeg, info.width, info.height, index, info.timestamp_ms, info.arrived_at_ms))
        return tuple(frames), expensive

    async def _decode_pending(
        self, resolved: ResolvedRequest, pending: list[tuple[MediaItem, list[tuple[int, Any]]]]
    ) -> None:
        """Payloads whose JPEG costs CPU are encoded off the event loop (each distinct payload once, however
        many parts reference it, so N parts of one frame share one JPEG), then put in their items."""
        distinct = list({id(p): p for _, payloads in pending for _, p in payloads}.values())
        encoded = await asyncio.gather(*(asyncio.to_thread(p.jpeg) for p in distinct))
        jpegs = {id(p): jpeg for p, jpeg in zip(distinct, encoded, strict=True)}
        replaced: dict[int, MediaItem] = {}
        for item, payloads in pending:
            frames = list(item.frames)
            for pos, payload in payloads:
                f = frames[pos]
                jpeg = jpegs[id(payload)]
                frames[pos] = MediaFrame(jpeg, f.width, f.height, f.index, f.timestamp_ms, f.arrived_at_ms)
            replaced[id(item)] = MediaItem(item.kind, item.url, tuple(frames), item.stream_id, item.max_fps)
        for message in resolved.messages:
            content = message.get("content")
            if isinstance(content, list):
                for i, part in enumerate(content):
                    if isinstance(part, MediaItem) and id(part) in replaced:
                        content[i] = replaced[id(part)]
