"""Select frames for a parsed `ovs://` reference from one snapshot of a stream (CONTRACT §5).

Pure functions of a `FrameWindow` (an immutable snapshot) and a reference: no registry, no clock,
no I/O. They return lifetime indexes or raise a typed error whose message names the URI.

Decisions beyond the contract's text:
- A negative `frame_index` that reaches before the stream's first frame ever (e.g. -100 when only
  10 frames were produced) is 404 `segment_empty`, not 410: that frame never existed.
- A time anchor with no frame within tolerance is 404 `segment_empty` (the contract), and the message
  says whether the time lies before the retained frames (evicted) or after the newest one.
- Segment anchors become positions of their own kind (index or stream time); `end <= start` is
  judged in that kind, or, for mixed kinds, after mapping the time onto the window's indexes.
- Frames lost in a server restart (indexes below the window's `restart_index`, stream times before
  its `restart_ms`) are 404 `segment_empty` whose message says the server restarted: no frame is
  retained there and none ever will be (the restart may also have skipped indexes never produced).
  A relative anchor while nothing arrived since the restart is the same.
- Sampling: grid points `t0 + k * 1000 / max_fps` for every k with a point at or before the last
  frame in range; each takes the nearest frame (a tie goes to the earlier frame); repeats are
  dropped. The loop jumps over grid points that cannot pick a new frame, so its cost follows the
  number of frames selected, not the grid density.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from livesight.buffer.ring import FrameWindow
from livesight.core.errors import FrameEvicted, FrameNotYetProduced, SegmentEmpty, SegmentInvalid
from livesight.resolve.uri import Anchor, FrameRef, SegmentRef, shown


@dataclass(frozen=True, slots=True)
class Sample:
    """A segment's selected frames (lifetime indexes, oldest first), the grid slot each was taken for,
    and the range [lo, hi) of retained frames they were sampled from."""

    indexes: tuple[int, ...]
    slots: tuple[int, ...]
    lo: int
    hi: int


def select_frame(window: FrameWindow | None, ref: FrameRef) -> int:
    """The lifetime index of the one frame an `image_url` reference names."""
    url = shown(ref.url)
    anchor = ref.anchor
    if anchor.kind == "frame_index" and anchor.value >= 1 and window is not None:
        n = anchor.value
        if n >= window.next_index:
            newest = f"the newest frame is {window.next_index - 1}" if window.next_index else "no frame has arrived"
            raise FrameNotYetProduced(f"{url}: frame_index={n} has not been produced yet ({newest})")
        first = window.first_index
        if first is None or n < first:
            _raise_if_lost(window, url, f"frame_index={n}", n)
            oldest = f"the oldest retained frame is {first} (frame_index=0)" if first is not None else "none is left"
            raise FrameEvicted(f"{url}: frame_index={n} was evicted; {oldest}")
        return n
    first, last = _bounds(window, url)
    assert window is not None
    if anchor.kind == "frame_index":
        if anchor.value == 0:
            return first
        index = last + 1 + anchor.value
        if index < 0:
            raise SegmentEmpty(
                f"{url}: frame_index={anchor.value} is before the stream's first frame "
                f"(only {window.next_index} frames were produced)"
            )
        if index < first:
            _raise_if_lost(window, url, f"frame_index={anchor.value} (frame {index})", index)
            raise FrameEvicted(
                f"{url}: frame_index={anchor.value} is frame {index}, which was evicted; "
                f"the oldest retained frame is {first} (frame_index=0)"
            )
        return index
    target = _time_of(window, anchor, first, last)
    before = window.index_at_or_before(target)
    after = window.index_at_or_after(target)
    candidates: list[int] = []
    if ref.direction in ("nearest", "backward") and before is not None:
        candidates.append(before)
    if ref.direction in ("nearest", "forward") and after is not None:
        candidates.append(after)
    if candidates:
        best = min(candidates, key=lambda i: (abs(window.info(i).timestamp_ms - target), i))
        if abs(window.info(best).timestamp_ms - target) <= ref.tolerance_ms:
            return best
    oldest_ms, newest_ms = window.info(first).timestamp_ms, window.info(last).timestamp_ms
    where = (
        "before the server restarted (frames from before the restart were lost)"
        if window.restart_ms is not None and target <= window.restart_ms
        else f"before the oldest retained frame (t={oldest_ms} ms; older frames were evicted)"
        if target < oldest_ms
        else f"after the newest frame (t={newest_ms} ms; not produced yet)"
        if target > newest_ms
        else "in a gap between frames"
    )
    raise SegmentEmpty(
        f"{url}: no frame within tolerance_ms={ref.tolerance_ms} ({ref.direction}) of stream time {target} ms "
        f"({anchor}); that time is {where}"
    )


def select_segment(window: FrameWindow | None, ref: SegmentRef, max_frames: int) -> Sample:
    """The sampled frames of a `video_url` reference, at most `max_frames` of them."""
    url = shown(ref.url)
    first, last = _bounds(window, url)
    assert window is not None
    start = _position(window, ref.start, first, last)
    end = _position(window, ref.end, first, last) if ref.end is not None else None
    live_edge: _Pos = _Pos("index", last + 1) if start.kind == "index" else _Pos("time", _ts(window, last) + 1)
    stop = end or live_edge
    if stop.kind == start.kind:
        invalid = stop.value <= start.value
    else:
        invalid = _as_index(window, stop, last) <= _as_index(window, start, last)
    if invalid:
        raise SegmentInvalid(f"{url}: {_invalid_reason(window, ref, start, end, first, last)}")
    lo = max(first, start.value) if start.kind == "index" else window.index_at_or_after(start.value)
    if stop.kind == "index":
        hi = min(last + 1, stop.value)
    else:
        after = window.index_at_or_after(stop.value)
        hi = last + 1 if after is None else after
    if lo is None or hi <= lo:
        raise SegmentEmpty(f"{url}: {_empty_reason(window, ref, first, last)}")
    sample = _sample(window, lo, hi, ref.max_fps)
    if len(sample.indexes) > max_frames:
        raise SegmentInvalid(
            f"{url}: the segment holds {len(sample.indexes)} frames at max_fps={ref.max_fps:g}, more than the "
            f"limit of {max_frames} frames; lower max_fps or shorten the segment"
        )
    return sample


# --- positions --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Pos:
    kind: Literal["index", "time"]
    value: int


def _bounds(window: FrameWindow | None, url: str) -> tuple[int, int]:
    if window is None or window.next_index == 0:
        raise SegmentEmpty(f"{url}: the stream has no frame yet: no frame has arrived from its publisher")
    first, last = window.first_index, window.last_index
    if first is None and window.restart_index == window.next_index:
        raise SegmentEmpty(
            f"{url}: the server restarted and lost the stream's frames from before the restart; "
            "no frame has arrived since"
        )
    if first is None or last is None:
        raise SegmentEmpty(
            f"{url}: every frame of the stream ({window.next_index} produced) is older than the retention "
            "window and was evicted; no frame has arrived since"
        )
    return first, last


def _raise_if_lost(window: FrameWindow, url: str, what: str, index: int) -> None:
    if window.restart_index is not None and index < window.restart_index:
        raise SegmentEmpty(
            f"{url}: {what} is from before the server restarted; frames before index {window.restart_index} "
            "were lost in the restart"
        )


def _ts(window: FrameWindow, index: int) -> int:
    return window.info(index).timestamp_ms


def _time_of(window: FrameWindow, anchor: Anchor, first: int, last: int) -> int:
    if anchor.kind == "timestamp_ms":
        return anchor.value
    if anchor.value < 0:
        return _ts(window, last) + anchor.value
    return _ts(window, first) + anchor.value


def _position(window: FrameWindow, anchor: Anchor, first: int, last: int) -> _Pos:
    if anchor.kind == "frame_index":
        if anchor.value >= 1:
            return _Pos("index", anchor.value)
        return _Pos("index", first if anchor.value == 0 else last + 1 + anchor.value)
    return _Pos("time", _time_of(window, anchor, first, last))


def _as_index(window: FrameWindow, pos: _Pos, last: int) -> int:
    if pos.kind == "index":
        return pos.value
    after = window.index_at_or_after(pos.value)
    return last + 1 if after is None else after


def _describe(window: FrameWindow, pos: _Pos) -> str:
    return f"frame {pos.value}" if pos.kind == "index" else f"stream time {pos.value} ms"


def _invalid_reason(window: FrameWindow, ref: SegmentRef, start: _Pos, end: _Pos | None, first: int, last: int) -> str:
    newest = f"frame {last}, stream time {_ts(window, last)} ms"
    if end is None:
        return (
            f"{ref.start} resolves to {_describe(window, start)}, which is not before the live edge ({newest}); "
            "omitting the end means now, so the start must lie in the past"
        )
    assert ref.end is not None
    reason = (
        f"the end {ref.end} (exclusive) resolves to {_describe(window, end)}, which is not after the start "
        f"{ref.start} ({_describe(window, start)})"
    )
    if ref.end.kind == "offset_ms" and ref.end.value >= 0:
        reason += (
            f"; note that {ref.end.param}={ref.end.value} counts from the oldest retained frame "
            f"(frame {first}, stream time {_ts(window, first)} ms), not from now: omit the end to mean now"
        )
    elif ref.end.kind == "frame_index" and ref.end.value == 0:
        reason += f"; note that {ref.end.param}=0 means the oldest retained frame: omit the end to mean now"
    return reason


def _empty_reason(window: FrameWindow, ref: SegmentRef, first: int, last: int) -> str:
    reason = (
        f"no retained frame lies in [{ref.start}, {ref.end or 'now'}); the stream retains frames {first}..{last} "
        f"(stream time {_ts(window, first)}..{_ts(window, last)} ms)"
    )
    if ref.end is not None and ref.end.kind == "offset_ms" and ref.end.value >= 0:
        reason += f"; {ref.end.param}={ref.end.value} counts from the oldest retained frame: omit the end to mean now"
    if window.restart_index is not None:
        reason += (
            f"; the server restarted: frames before index {window.restart_index} "
            f"(stream time {window.restart_ms} ms) were lost in the restart"
        )
    return reason


# --- sampling ---------------------------------------------------------------------------------------


def _sample(window: FrameWindow, lo: int, hi: int, max_fps: float) -> Sample:
    """Frames in [lo, hi) nearest a uniform grid of step 1000/max_fps ms that starts at frame lo."""
    t0 = _ts(window, lo)
    t_end = _ts(window, hi - 1)
    step = 1000.0 / max_fps
    k_max = math.floor((t_end - t0) / step)
    indexes: list[int] = []
    slots: list[int] = []
    k = 0
    while k <= k_max:
        g = t0 + k * step
        after = window.index_at_or_after(math.ceil(g))
        if after is None or after >= hi:
            after = hi - 1
        before = after - 1 if after > lo and _ts(window, after) > g else after
        pick = before if g - _ts(window, before) <= _ts(window, after) - g else after
        if not indexes or pick != indexes[-1]:
            indexes.append(pick)
            slots.append(k)
        if pick + 1 >= hi:
            break
        # Every grid point at or before the midpoint to the next frame picks `pick` again: skip them
        # (one point short of the exact boundary, so rounding can only cost one extra iteration).
        mid = (_ts(window, pick) + _ts(window, pick + 1)) / 2
        k = max(k + 1, math.floor((mid - t0) / step))
    return Sample(tuple(indexes), tuple(slots), lo, hi)
