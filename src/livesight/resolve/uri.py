"""Parse `ovs://` URIs (CONTRACT §5): a pure function from a string to a typed reference.

`parse_frame_uri` reads an `image_url` (exactly one anchor); `parse_segment_uri` a `video_url`
(exactly one start anchor, at most one end anchor, `max_fps`). Every failure is a typed error whose
message names the URI and the offending parameter; nothing else can escape.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from livesight.core.errors import QueryParamInvalid, StreamUrlInvalid
from livesight.core.ids import parse_stream_id

AnchorKind = Literal["frame_index", "timestamp_ms", "offset_ms"]
Direction = Literal["nearest", "backward", "forward"]

DEFAULT_TOLERANCE_MS = 100
DEFAULT_MAX_FPS = 1.0
MAX_FPS_LIMIT = 1000.0  # a grid finer than 1 ms says nothing more
_INT = re.compile(r"^[+-]?\d{1,15}$")
_FLOAT = re.compile(r"^\+?(\d{1,9}(\.\d*)?|\.\d+)$")
_ANCHOR_KINDS: tuple[AnchorKind, ...] = ("frame_index", "timestamp_ms", "offset_ms")
_IMAGE_PARAMS = frozenset({*_ANCHOR_KINDS, "tolerance_ms", "direction"})
_VIDEO_PARAMS = frozenset({*(f"start_{k}" for k in _ANCHOR_KINDS), *(f"end_{k}" for k in _ANCHOR_KINDS), "max_fps"})
_SHOWN_URL_CHARS = 200


@dataclass(frozen=True, slots=True)
class Anchor:
    """One position in a stream: a lifetime index, a stream-clock time, or an offset (CONTRACT §5.1)."""

    kind: AnchorKind
    value: int
    param: str  # the query parameter as sent, e.g. "start_offset_ms"

    def __str__(self) -> str:
        return f"{self.param}={self.value}"


@dataclass(frozen=True, slots=True)
class FrameRef:
    """An `image_url` reference: one frame."""

    url: str
    stream_id: str  # canonical UUID
    anchor: Anchor
    tolerance_ms: int = DEFAULT_TOLERANCE_MS
    direction: Direction = "nearest"


@dataclass(frozen=True, slots=True)
class SegmentRef:
    """A `video_url` reference: frames in [start, end), sampled at `max_fps`. `end` None = the live edge."""

    url: str
    stream_id: str
    start: Anchor
    end: Anchor | None = None
    max_fps: float = DEFAULT_MAX_FPS


def is_ovs_url(url: object) -> bool:
    return isinstance(url, str) and url[:6].lower() == "ovs://"


def shown(url: str) -> str:
    """The URI as quoted in error messages (bounded)."""
    return url if len(url) <= _SHOWN_URL_CHARS else url[:_SHOWN_URL_CHARS] + "…"


def parse_frame_uri(url: str) -> FrameRef:
    """An `image_url` `ovs://` URI → FrameRef. Raises StreamUrlInvalid or QueryParamInvalid."""
    stream_id, params = _split(url)
    _reject_unknown(url, params, _IMAGE_PARAMS, "image_url", _VIDEO_PARAMS)
    anchors = [Anchor(kind, _int(url, kind, params[kind]), kind) for kind in _ANCHOR_KINDS if kind in params]
    if not anchors:
        raise QueryParamInvalid(
            f"{shown(url)}: an image_url needs exactly one anchor: frame_index, timestamp_ms or offset_ms "
            "(e.g. ?frame_index=-1 for the newest frame)"
        )
    if len(anchors) > 1:
        raise QueryParamInvalid(
            f"{shown(url)}: conflicting anchors {', '.join(a.param for a in anchors)}: an image_url takes exactly one"
        )
    anchor = anchors[0]
    if anchor.kind == "timestamp_ms" and anchor.value < 0:
        raise QueryParamInvalid(f"{shown(url)}: timestamp_ms={anchor.value} is negative; stream time starts at 0")
    tolerance = DEFAULT_TOLERANCE_MS
    if "tolerance_ms" in params:
        tolerance = _int(url, "tolerance_ms", params["tolerance_ms"])
        if tolerance <= 0:
            raise QueryParamInvalid(f"{shown(url)}: tolerance_ms={tolerance} must be > 0")
    direction: Direction = "nearest"
    if "direction" in params:
        value = params["direction"]
        if value not in ("nearest", "backward", "forward"):
            raise QueryParamInvalid(f"{shown(url)}: direction={value!r} is not one of nearest, backward, forward")
        direction = value  # type: ignore[assignment]
    return FrameRef(url, stream_id, anchor, tolerance, direction)


def parse_segment_uri(url: str) -> SegmentRef:
    """A `video_url` `ovs://` URI → SegmentRef. Raises StreamUrlInvalid or QueryParamInvalid."""
    stream_id, params = _split(url)
    _reject_unknown(url, params, _VIDEO_PARAMS, "video_url", _IMAGE_PARAMS)
    starts = [
        Anchor(k, _int(url, f"start_{k}", params[f"start_{k}"]), f"start_{k}")
        for k in _ANCHOR_KINDS
        if f"start_{k}" in params
    ]
    ends = [
        Anchor(k, _int(url, f"end_{k}", params[f"end_{k}"]), f"end_{k}") for k in _ANCHOR_KINDS if f"end_{k}" in params
    ]
    if not starts:
        raise QueryParamInvalid(
            f"{shown(url)}: a video_url needs exactly one start anchor: start_frame_index, start_timestamp_ms "
            "or start_offset_ms (e.g. ?start_offset_ms=-5000 for the last 5 s)"
        )
    if len(starts) > 1:
        raise QueryParamInvalid(
            f"{shown(url)}: conflicting start anchors {', '.join(a.param for a in starts)}: give exactly one"
        )
    if len(ends) > 1:
        raise QueryParamInvalid(
            f"{shown(url)}: conflicting end anchors {', '.join(a.param for a in ends)}: give at most one"
        )
    for anchor in (*starts, *ends):
        if anchor.kind == "timestamp_ms" and anchor.value < 0:
            raise QueryParamInvalid(f"{shown(url)}: {anchor} is negative; stream time starts at 0")
    max_fps = DEFAULT_MAX_FPS
    if "max_fps" in params:
        raw = params["max_fps"]
        if not _FLOAT.match(raw) or not math.isfinite(max_fps := float(raw)) or max_fps <= 0:
            raise QueryParamInvalid(f"{shown(url)}: max_fps={raw!r} must be a number > 0")
        if max_fps > MAX_FPS_LIMIT:
            raise QueryParamInvalid(f"{shown(url)}: max_fps={raw} is above the limit of {MAX_FPS_LIMIT:g}")
    return SegmentRef(url, stream_id, starts[0], ends[0] if ends else None, max_fps)


# --- helpers ----------------------------------------------------------------------------------------


def _split(url: str) -> tuple[str, dict[str, str]]:
    if not is_ovs_url(url):
        raise StreamUrlInvalid(f"{shown(url)}: not an ovs:// URL (expected ovs://streams/<stream_id>?...)")
    rest = url[6:]
    if "#" in rest:
        raise StreamUrlInvalid(f"{shown(url)}: an ovs:// URL has no #fragment (expected ovs://streams/<stream_id>?...)")
    path, _, query = rest.partition("?")
    host, _, sid = path.partition("/")
    sid = sid[:-1] if sid.endswith("/") else sid
    stream_id = parse_stream_id(sid) if host.lower() == "streams" and "/" not in sid else None
    if stream_id is None:
        raise StreamUrlInvalid(
            f"{shown(url)}: expected ovs://streams/<stream_id>?... where stream_id is the stream's UUID"
        )
    params: dict[str, str] = {}
    for piece in query.split("&"):
        if not piece:
            continue
        name, eq, value = piece.partition("=")
        if "%" in piece:
            name, value = unquote(name), unquote(value)
        if not eq or not name:
            raise QueryParamInvalid(f"{shown(url)}: malformed query parameter {piece!r} (expected name=value)")
        if name in params:
            raise QueryParamInvalid(f"{shown(url)}: duplicate query parameter {name}")
        params[name] = value
    return stream_id, params


def _reject_unknown(
    url: str, params: dict[str, str], allowed: frozenset[str], part: str, other: frozenset[str]
) -> None:
    for name in params:
        if name in allowed:
            continue
        if name in other:
            hint = (
                "use start_*/end_* anchors and max_fps in a video_url"
                if part == "video_url"
                else "use frame_index, timestamp_ms or offset_ms in an image_url"
            )
            raise QueryParamInvalid(f"{shown(url)}: {name} is not a {part} parameter ({hint})")
        raise QueryParamInvalid(
            f"{shown(url)}: unknown query parameter {name!r} for a {part} (allowed: {', '.join(sorted(allowed))})"
        )


def _int(url: str, name: str, raw: str) -> int:
    if not _INT.match(raw):
        raise QueryParamInvalid(f"{shown(url)}: {name}={raw!r} is not an integer")
    return int(raw)
