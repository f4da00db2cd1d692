"""Frame availability latency for `bench/ingest.py`: publisher capture time of a picture -> when the server
first shows it. Every picture carries its number in its pixels (`livesight.ingest.pattern`), and each
publisher reports when it handed each position of its looping clip to the network, so a picture seen at
time t came from the latest capture of that number before t.

Two ways to see a picture (`--latency-via`):

- `status`: poll `GET /v1/streams/{id}` for `last_frame_index` (the frame is known to the server); the
  number of a sample of the indexes seen is read afterwards through `GET /v1/streams/{id}/frames/{index}`;
- `frame`: poll `GET /v1/streams/{id}/frames/-1` and read the number from the newest frame's pixels at
  once (glass-to-queryable: the frame is usable by a query, decoded if the store decodes on demand). The
  JPEG is decoded scaled down (DCT scaling, ~160 px wide), which is enough to read the number.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import simplejpeg

from livesight.ingest.pattern import read_frame_number

SAMPLES_PER_STREAM = 60
Shown = dict[str, list[tuple[int | None, float]]]
"""Per stream: (number read from the pixels, wall time the server first showed it)."""


def _number(jpeg: bytes) -> int | None:
    luma = simplejpeg.decode_jpeg(jpeg, colorspace="GRAY", min_width=160)[:, :, 0]
    return read_frame_number(luma)


def _ticks(seconds: float, poll_ms: float) -> Iterator[None]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        tick = time.monotonic()
        yield
        time.sleep(max(0.0, poll_ms / 1000 - (time.monotonic() - tick)))


def poll_status(client: httpx.Client, stream_ids: list[str], seconds: float, poll_ms: float) -> Shown:
    seen: dict[str, dict[int, float]] = {s: {} for s in stream_ids}
    for _ in _ticks(seconds, poll_ms):
        for sid in stream_ids:
            index = client.get(f"/v1/streams/{sid}").json()["last_frame_index"]
            if index is not None and index not in seen[sid]:
                seen[sid][index] = time.time()
    shown: Shown = {}
    for sid, by_index in seen.items():
        indexes = sorted(i for i in by_index if i >= 1)  # frame_index 0 means "the oldest retained"
        shown[sid] = []
        for index in indexes[:: max(1, len(indexes) // SAMPLES_PER_STREAM)]:
            response = client.get(f"/v1/streams/{sid}/frames/{index}")
            if response.status_code == 200:
                shown[sid].append((_number(response.content), by_index[index]))
    return shown


def poll_frames(client: httpx.Client, stream_ids: list[str], seconds: float, poll_ms: float) -> Shown:
    shown: Shown = {s: [] for s in stream_ids}
    last: dict[str, int | None] = dict.fromkeys(stream_ids)
    for _ in _ticks(seconds, poll_ms):
        for sid in stream_ids:
            response = client.get(f"/v1/streams/{sid}/frames/-1")
            if response.status_code != 200:
                continue
            number = _number(response.content)
            if number is not None and number != last[sid]:
                last[sid] = number
                shown[sid].append((number, time.time()))
    return shown


def poll(base_url: str, key: str, stream_ids: list[str], seconds: float, poll_ms: float, via: str) -> Shown:
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
        if via == "frame":
            return poll_frames(client, stream_ids, seconds, poll_ms)
        return poll_status(client, stream_ids, seconds, poll_ms)


def latencies_ms(shown: Shown, results: list[dict[str, Any]]) -> list[float]:
    """Seen time - the latest capture of that picture before it (pictures repeat every clip loop)."""
    out: list[float] = []
    for pairs, result in zip(shown.values(), results, strict=True):
        loop = result.get("loop") or (1 << 16)
        by_number: dict[int, list[float]] = {}
        for n, t in sorted((int(n), t) for n, t in (result.get("captured") or {}).items()):
            by_number.setdefault(n % loop, []).append(t)
        for number, seen_at in pairs:
            times = [t for t in by_number.get(number % loop, []) if t <= seen_at] if number is not None else []
            if times:
                out.append((seen_at - times[-1]) * 1000)
    return out
