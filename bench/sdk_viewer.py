"""The ingest benchmark's viewers: `--viewers V` SDK viewers per stream in one child process.

`python -m bench.sdk_viewer --tokens tokens.json --out result.json --stop-file F` (started by
`bench/ingest.py`). Each viewer is an `rtc.Room` with a viewer token; it counts the frames its
`rtc.VideoStream` delivers (decoded by the SDK, so this process pays for decoding, not the server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any


async def watch(url: str, token: str, stop_file: Path, seconds: float) -> dict[str, Any]:
    from livekit import rtc

    room = rtc.Room()
    frames: list[float] = []
    readers: list[asyncio.Task[None]] = []

    async def read(track: rtc.Track) -> None:
        async for _ in rtc.VideoStream(track, capacity=1):
            frames.append(time.monotonic())

    @room.on("track_subscribed")
    def _on_track(track: rtc.Track, *_: Any) -> None:
        if track.kind == rtc.TrackKind.KIND_VIDEO:
            readers.append(asyncio.ensure_future(read(track)))

    try:
        await asyncio.wait_for(room.connect(url, token, rtc.RoomOptions(auto_subscribe=True)), 30)
    except Exception as exc:
        return {"error": f"viewer connect: {exc}"}
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds and not stop_file.exists():  # noqa: ASYNC240, ASYNC110 (another process signals)
        await asyncio.sleep(0.2)
    await room.disconnect()
    for task in readers:
        task.cancel()
    return {"frames": len(frames), "first_at": frames[0] if frames else None, "last_at": frames[-1] if frames else None}


async def run(viewers: list[dict[str, str]], args: argparse.Namespace) -> list[dict[str, Any]]:
    stop = Path(args.stop_file)
    return list(await asyncio.gather(*(watch(v["url"], v["token"], stop, args.seconds) for v in viewers)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--seconds", type=float, default=600)
    args = parser.parse_args()
    results = asyncio.run(run(json.loads(Path(args.tokens).read_text()), args))
    Path(args.out).write_text(json.dumps({"viewers": results}))


if __name__ == "__main__":
    main()
