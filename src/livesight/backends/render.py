"""Engine profiles: how resolved media goes into an OpenAI-compatible request (notes/model-backends.md §2).

- `vllm`: an image is one `image_url` JPEG data URL; a segment is one `video_url`
  `data:video/jpeg;base64,<f1>,<f2>,…` plus top-level `media_io_kwargs.video` = {fps: max_fps,
  frames_indices: the grid slot of each frame, num_frames, total_num_frames}. vLLM reads that
  metadata per request, not per part, so when a request holds several segments whose metadata
  differ they are sent as in `frames` instead (stated in the text part). Parts carry a `uuid`
  (stream, indexes) so vLLM's caches recognise a frame or segment asked about again.
- `mp4`: a segment is one `video_url` `data:video/mp4;base64,…` (H.264, variable frame rate with the
  frames' own stream times as timestamps), encoded off the event loop.
- `frames`: a segment is N `image_url` parts, each preceded by a text part with its stream time.

Every segment is preceded by a text part naming the stream, the frame count and the stream time of
its first frame, because no engine passes absolute time to the model in any other way.

`render_parts` leaves every media URL a `DataUrl` (`body.py`): the base64 of each distinct JPEG is
computed once per request and shared by every part that sends it; `render` turns them into strings
(for callers that want plain JSON values).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, Literal

from livesight.backends.body import Base64Cache, DataUrl
from livesight.backends.imaging import encode_mp4
from livesight.core.media import MediaFrame, MediaItem

Profile = Literal["vllm", "mp4", "frames"]
OFFLOAD_BYTES = 256 * 1024  # media above this is encoded (and the body serialised) in the executor
Part = dict[str, Any]


_JPEG_PREFIX = b"data:image/jpeg;base64,"
_VIDEO_JPEG_PREFIX = b"data:video/jpeg;base64,"
_MP4_PREFIX = b"data:video/mp4;base64,"


def jpeg_data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def frame_label(frame: MediaFrame, start_ms: int) -> str:
    """`t=+1.5s (stream time 12.345s, frame_index 123)`: the text part before a frame in `frames`."""
    ts = frame.timestamp_ms or 0
    return f"t=+{(ts - start_ms) / 1000:.1f}s (stream time {ts / 1000:.3f}s, frame_index {frame.index})"


def segment_intro(item: MediaItem) -> str:
    first, last = item.frames[0], item.frames[-1]
    return (
        f"Video segment of stream {item.stream_id}: {len(item.frames)} frames"
        + (f" sampled at up to {item.max_fps:g} fps" if item.max_fps else "")
        + f", from stream time {(first.timestamp_ms or 0) / 1000:.3f}s to {(last.timestamp_ms or 0) / 1000:.3f}s"
        + f" (frame_index {first.index}..{last.index})."
    )


def grid_slots(item: MediaItem) -> list[int]:
    """Each frame's slot on the sampling grid (time since the first frame × max_fps), strictly increasing."""
    fps = item.max_fps or 1.0
    start = item.frames[0].timestamp_ms or 0
    slots: list[int] = []
    for frame in item.frames:
        slot = round(((frame.timestamp_ms or 0) - start) * fps / 1000)
        slots.append(max(slot, slots[-1] + 1) if slots else slot)
    return slots


def media_uuid(item: MediaItem) -> str:
    indexes = ",".join(str(f.index) for f in item.frames)
    if item.kind == "image":
        return f"{item.stream_id}/{indexes}"
    digest = hashlib.blake2b(indexes.encode(), digest_size=8).hexdigest()
    return f"{item.stream_id}/{item.frames[0].index}-{item.frames[-1].index}/{digest}"


class Renderer:
    """Turns resolved messages into upstream JSON for one profile."""

    def __init__(self, profile: Profile, executor: Executor | None = None) -> None:
        self.profile = profile
        self._executor = executor

    async def render(self, messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """(messages, extra top-level fields) for the upstream request, media URLs as strings."""
        out, extra = await self.render_parts(messages)
        return [_materialised(m) for m in out], extra

    async def render_parts(self, messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """(messages, extra top-level fields); every media URL is a `DataUrl` sharing its base64."""
        videos = [p for m in messages for p in _parts(m) if isinstance(p, MediaItem) and p.kind == "video"]
        extra: dict[str, Any] = {}
        video_mode = self.profile
        if self.profile == "vllm" and videos:
            metas = [_vllm_video_meta(v) for v in videos]
            if all(m == metas[0] for m in metas):
                extra["media_io_kwargs"] = {"video": metas[0]}
            else:
                video_mode = "frames"
        mp4s: dict[int, bytes] = {}
        if video_mode == "mp4" and videos:
            loop = asyncio.get_running_loop()
            encoded = await asyncio.gather(*(loop.run_in_executor(self._executor, encode_mp4, v) for v in videos))
            mp4s = {id(v): data for v, data in zip(videos, encoded, strict=True)}
        distinct = {
            id(f.jpeg): len(f.jpeg) for m in messages for p in _parts(m) if isinstance(p, MediaItem) for f in p.frames
        }
        if sum(distinct.values()) > OFFLOAD_BYTES:  # base64 of megabytes: keep it off the event loop
            loop = asyncio.get_running_loop()
            out = await loop.run_in_executor(self._executor, self._render_messages, messages, video_mode, mp4s)
        else:
            out = self._render_messages(messages, video_mode, mp4s)
        return out, extra

    def _render_messages(
        self, messages: list[dict[str, Any]], video_mode: str, mp4s: dict[int, bytes]
    ) -> list[dict[str, Any]]:
        b64 = Base64Cache()
        out: list[dict[str, Any]] = []
        for message in messages:
            content = message.get("content")
            if not isinstance(content, list) or not any(isinstance(p, MediaItem) for p in content):
                out.append(message)
                continue
            parts: list[Part] = []
            for part in content:
                if isinstance(part, MediaItem):
                    mp4 = mp4s.get(id(part))
                    parts.extend(self._render_item(part, video_mode, b64, None if mp4 is None else b64(mp4)))
                else:
                    parts.append(part)
            out.append({**message, "content": parts})
        return out

    def _render_item(self, item: MediaItem, video_mode: str, b64: Base64Cache, mp4: bytes | None) -> list[Part]:
        with_uuid: Callable[[Part], Part] = (
            (lambda p: {**p, "uuid": media_uuid(item)}) if self.profile == "vllm" else (lambda p: p)
        )
        if item.kind == "image":
            frame = item.frames[0]
            return [with_uuid({"type": "image_url", "image_url": {"url": DataUrl((_JPEG_PREFIX, b64(frame.jpeg)))}})]
        intro: Part = {"type": "text", "text": segment_intro(item)}
        if video_mode == "vllm":
            pieces: list[bytes] = [_VIDEO_JPEG_PREFIX]
            for i, f in enumerate(item.frames):
                pieces.extend((b",", b64(f.jpeg)) if i else (b64(f.jpeg),))
            return [intro, with_uuid({"type": "video_url", "video_url": {"url": DataUrl(tuple(pieces))}})]
        if video_mode == "mp4":
            assert mp4 is not None
            return [intro, {"type": "video_url", "video_url": {"url": DataUrl((_MP4_PREFIX, mp4))}}]
        start = item.frames[0].timestamp_ms or 0
        parts = [intro]
        for frame in item.frames:
            parts.append({"type": "text", "text": frame_label(frame, start)})
            parts.append({"type": "image_url", "image_url": {"url": DataUrl((_JPEG_PREFIX, b64(frame.jpeg)))}})
        return parts


def count_images(messages: list[dict[str, Any]]) -> int:
    """Image parts in rendered (or unresolved) messages: what a model's `max_images` counts."""
    return sum(
        1
        for m in messages
        for p in _parts(m)
        if (isinstance(p, dict) and p.get("type") == "image_url") or (isinstance(p, MediaItem) and p.kind == "image")
    )


def _materialised(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    if not isinstance(content, list):
        return message
    parts: list[Any] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        ref = part.get(kind) if isinstance(kind, str) else None
        if isinstance(ref, dict) and isinstance(ref.get("url"), DataUrl):
            part = {**part, kind: {**ref, "url": ref["url"].text()}}
        parts.append(part)
    return {**message, "content": parts}


def _parts(message: dict[str, Any]) -> list[Any]:
    content = message.get("content")
    return content if isinstance(content, list) else []


def _vllm_video_meta(item: MediaItem) -> dict[str, Any]:
    slots = grid_slots(item)
    return {
        "fps": item.max_fps or 1.0,
        "frames_indices": slots,
        "num_frames": len(slots),
        "total_num_frames": slots[-1] + 1,
    }
