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
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, Literal

from livesight.backends.imaging import encode_mp4
from livesight.core.media import MediaFrame, MediaItem

Profile = Literal["vllm", "mp4", "frames"]
OFFLOAD_BYTES = 256 * 1024  # media above this is encoded (and the body serialised) in the executor
Part = dict[str, Any]


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
        """(messages, extra top-level fields) for the upstream request."""
        videos = [p for m in messages for p in _parts(m) if isinstance(p, MediaItem) and p.kind == "video"]
        extra: dict[str, Any] = {}
        video_mode = self.profile
        if self.profile == "vllm" and videos:
            metas = [_vllm_video_meta(v) for v in videos]
            if all(m == metas[0] for m in metas):
                extra["media_io_kwargs"] = {"video": metas[0]}
            else:
                video_mode = "frames"
        mp4s: dict[int, str] = {}
        if video_mode == "mp4" and videos:
            loop = asyncio.get_running_loop()
            encoded = await asyncio.gather(*(loop.run_in_executor(self._executor, encode_mp4, v) for v in videos))
            mp4s = {
                id(v): "data:video/mp4;base64," + base64.b64encode(data).decode("ascii")
                for v, data in zip(videos, encoded, strict=True)
            }
        media_bytes = sum(
            len(f.jpeg) for m in messages for p in _parts(m) if isinstance(p, MediaItem) for f in p.frames
        )
        if media_bytes > OFFLOAD_BYTES:  # base64 of megabytes: keep it off the event loop
            loop = asyncio.get_running_loop()
            out = await loop.run_in_executor(self._executor, self._render_messages, messages, video_mode, mp4s)
        else:
            out = self._render_messages(messages, video_mode, mp4s)
        return out, extra

    def _render_messages(
        self, messages: list[dict[str, Any]], video_mode: str, mp4s: dict[int, str]
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for message in messages:
            content = message.get("content")
            if not isinstance(content, list) or not any(isinstance(p, MediaItem) for p in content):
                out.append(message)
                continue
            parts: list[Part] = []
            for part in content:
                if isinstance(part, MediaItem):
                    parts.extend(self._render_item(part, video_mode, mp4s.get(id(part))))
                else:
                    parts.append(part)
            out.append({**message, "content": parts})
        return out

    def _render_item(self, item: MediaItem, video_mode: str, mp4_url: str | None) -> list[Part]:
        with_uuid: Callable[[Part], Part] = (
            (lambda p: {**p, "uuid": media_uuid(item)}) if self.profile == "vllm" else (lambda p: p)
        )
        if item.kind == "image":
            frame = item.frames[0]
            return [with_uuid({"type": "image_url", "image_url": {"url": jpeg_data_url(frame.jpeg)}})]
        intro: Part = {"type": "text", "text": segment_intro(item)}
        if video_mode == "vllm":
            url = "data:video/jpeg;base64," + ",".join(base64.b64encode(f.jpeg).decode("ascii") for f in item.frames)
            return [intro, with_uuid({"type": "video_url", "video_url": {"url": url}})]
        if video_mode == "mp4":
            assert mp4_url is not None
            return [intro, {"type": "video_url", "video_url": {"url": mp4_url}}]
        start = item.frames[0].timestamp_ms or 0
        parts = [intro]
        for frame in item.frames:
            parts.append({"type": "text", "text": frame_label(frame, start)})
            parts.append({"type": "image_url", "image_url": {"url": jpeg_data_url(frame.jpeg)}})
        return parts


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
