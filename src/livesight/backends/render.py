"""Engine profiles: how resolved media goes into an OpenAI-compatible request (notes/model-backends.md §2).

- `vllm`: an image is one `image_url` JPEG data URL; a segment is one `video_url`
  `data:video/jpeg;base64,<f1>,<f2>,…` plus top-level `media_io_kwargs.video` = {fps: max_fps,
  frames_indices: the grid slot of each frame, num_frames, total_num_frames}. vLLM reads that
  metadata per request, not per part, so when a request holds several segments whose metadata
  differ they are sent as in `frames` instead (stated in the text part). Parts carry a `uuid`
  (`{stream_id}:{frame_index}` for a frame, `media_uuid`) so vLLM's caches recognise a frame or segment
  asked about again.
- `mp4`: a segment is one `video_url` `data:video/mp4;base64,…` (H.264, variable frame rate with the
  frames' own stream times as timestamps), encoded off the event loop.
- `frames`: a segment is N `image_url` parts, each preceded by a text part with its stream time.

Every segment is preceded by a text part naming the stream, the frame count and the stream time of
its first frame, because no engine passes absolute time to the model in any other way.

`Renderer.render` leaves every media URL a `DataUrl` (`body.py`): the base64 of each distinct JPEG is
computed once per request and shared by every part that sends it; `encode_body` splices them in.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Literal

from livesight.backends.body import Base64Cache, DataUrl
from livesight.backends.imaging import encode_mp4
from livesight.backends.request import MediaPart, Message, Part, TextPart
from livesight.core.jsontypes import JsonArray, JsonObject
from livesight.core.media import MediaFrame, MediaItem

Profile = Literal["vllm", "mp4", "frames"]
OFFLOAD_BYTES = 256 * 1024  # media above this is encoded (and the body serialised) in the executor
WirePart = Mapping[str, object]  # a rendered content part: JSON whose media URLs are `DataUrl`s


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


def frame_uuid(stream_id: str, frame: MediaFrame) -> str:
    """`{stream_id}:{frame_index}`: a frame's vLLM media `uuid`. Stream ids are never reused and a stream's
    lifetime indexes never repeat, so one uuid never names two different pictures, in any request."""
    return f"{stream_id}:{frame.index}"


def media_uuid(item: MediaItem) -> str | None:
    """The `uuid` of a media part sent to vLLM: an image is its frame's `{stream_id}:{frame_index}`; a
    segment sent as one video is `{stream_id}:{first}-{last}:{hash of every index}` (the same frames, the
    same uuid). None for media that is not a stream's frames (nothing stable to name it by)."""
    if item.stream_id is None or any(f.index is None for f in item.frames):
        return None
    if item.kind == "image":
        return frame_uuid(item.stream_id, item.frames[0])
    indexes = ",".join(str(f.index) for f in item.frames)
    digest = hashlib.blake2b(indexes.encode(), digest_size=8).hexdigest()
    return f"{item.stream_id}:{item.frames[0].index}-{item.frames[-1].index}:{digest}"


@dataclass(slots=True)
class Rendered:
    """A request's messages as upstream JSON: media URLs are `DataUrl`s (`body.encode_body` splices them)."""

    messages: list[dict[str, object]]
    extra: JsonObject  # top-level fields the profile adds (vLLM's media_io_kwargs)
    images: int  # image_url parts sent, inline ones included: what a model's `max_images` counts


class Renderer:
    """Turns a resolved request's messages into upstream JSON for one profile."""

    def __init__(self, profile: Profile, executor: Executor | None = None) -> None:
        self.profile = profile
        self._executor = executor

    async def render(self, messages: Sequence[Message[Part]]) -> Rendered:
        items = [p.item for m in messages for p in m.parts if isinstance(p, MediaPart)]
        videos = [item for item in items if item.kind == "video"]
        extra: JsonObject = {}
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
        distinct = {id(f.jpeg): len(f.jpeg) for item in items for f in item.frames}
        if sum(distinct.values()) > OFFLOAD_BYTES:  # base64 of megabytes: keep it off the event loop
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, self._render, messages, extra, video_mode, mp4s)
        return self._render(messages, extra, video_mode, mp4s)

    def _render(
        self, messages: Sequence[Message[Part]], extra: JsonObject, video_mode: str, mp4s: dict[int, bytes]
    ) -> Rendered:
        b64 = Base64Cache()
        out: list[dict[str, object]] = []
        images = 0
        for message in messages:
            if not isinstance(message.content, tuple):
                out.append(message.wire(message.content))
                continue
            parts: list[WirePart] = []
            for part in message.content:
                if isinstance(part, MediaPart):
                    mp4 = mp4s.get(id(part.item))
                    parts.extend(self._render_item(part.item, video_mode, b64, None if mp4 is None else b64(mp4)))
                elif isinstance(part, TextPart):
                    parts.append(part.wire())
                else:
                    parts.append(part.raw)
            images += sum(1 for p in parts if p.get("type") == "image_url")
            out.append(message.wire(parts))
        return Rendered(out, extra, images)

    def _render_item(self, item: MediaItem, video_mode: str, b64: Base64Cache, mp4: bytes | None) -> list[WirePart]:
        uuid = media_uuid(item) if self.profile == "vllm" else None
        with_uuid: Callable[[WirePart], WirePart] = (lambda p: {**p, "uuid": uuid}) if uuid else (lambda p: p)
        if item.kind == "image":
            frame = item.frames[0]
            return [with_uuid({"type": "image_url", "image_url": {"url": DataUrl((_JPEG_PREFIX, b64(frame.jpeg)))}})]
        intro: WirePart = {"type": "text", "text": segment_intro(item)}
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
        # vLLM's segments sent as frames (several segments with different timing): each frame its own uuid
        per_frame = self.profile == "vllm" and uuid is not None and item.stream_id is not None
        for frame in item.frames:
            parts.append({"type": "text", "text": frame_label(frame, start)})
            image: WirePart = {"type": "image_url", "image_url": {"url": DataUrl((_JPEG_PREFIX, b64(frame.jpeg)))}}
            if per_frame and item.stream_id is not None:
                image = {**image, "uuid": frame_uuid(item.stream_id, frame)}
            parts.append(image)
        return parts


def _vllm_video_meta(item: MediaItem) -> JsonObject:
    slots = grid_slots(item)
    indices: JsonArray = [*slots]
    return {
        "fps": item.max_fps or 1.0,
        "frames_indices": indices,
        "num_frames": len(slots),
        "total_num_frames": slots[-1] + 1,
    }
