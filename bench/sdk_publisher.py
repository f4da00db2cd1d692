"""The ingest benchmark's SDK publishers: one child process per stream, the official `livekit` SDK.

- `sdk`: the clip of `bench/clip.py`, encoded once, fed to the SDK's `EncodedVideoSource` (libwebrtc
  packetises, paces and keeps its stats, but does not encode);
- `sdk-encode`: the SDK encodes every frame of the live test pattern (the `livesight publish` path).

`python -m bench.sdk_publisher --url ... --token ... --out result.json` (started by `bench/ingest.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from bench.clip import ClipSpec, load_or_encode
from bench.measure import cpu_seconds

Result = dict[str, object]


async def publish_pre_encoded(args: argparse.Namespace) -> Result:
    from livekit import rtc

    spec = ClipSpec(args.codec, args.width, args.height, args.fps, args.bitrate, args.gop)
    clip = load_or_encode(spec)
    codec = rtc.VideoCodec.VP8 if args.codec == "vp8" else rtc.VideoCodec.H264
    room = rtc.Room()
    await asyncio.wait_for(room.connect(args.url, args.token, rtc.RoomOptions(auto_subscribe=False)), 30)
    source = rtc.EncodedVideoSource(args.width, args.height)
    track = rtc.LocalVideoTrack.create_video_track("camera", source)
    options = rtc.TrackPublishOptions(
        source=rtc.TrackSource.SOURCE_CAMERA,
        simulcast=False,
        video_codec=codec,
        video_encoder=rtc.VideoEncoderBackend.ENCODER_BACKEND_PRE_ENCODED,
    )
    await room.local_participant.publish_track(track, options)
    captured: dict[int, float] = {}
    cpu0, t0 = cpu_seconds(), time.monotonic()
    n = 0
    while time.monotonic() - t0 < args.seconds and not Path(args.stop_file).exists():  # noqa: ASYNC240
        delay = t0 + n / args.fps - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        data, key = clip[n % len(clip)]
        now = time.time()
        frame_type = rtc.EncodedFrameType.ENCODED_FRAME_KEY if key else rtc.EncodedFrameType.ENCODED_FRAME_DELTA
        source.capture_frame(rtc.EncodedVideoFrame(data, args.width, args.height, codec, frame_type, int(now * 1e6)))
        captured[n] = now
        n += 1
    cpu = (cpu_seconds() - cpu0) / (time.monotonic() - t0)
    await room.disconnect()
    await source.aclose()
    return {"sent": n, "captured": captured, "cpu_per_s": cpu, "loop": len(clip)}


async def publish_encoding(args: argparse.Namespace) -> Result:
    from livesight.ingest.publisher import PatternSource, PublishStats, publish

    stats = PublishStats(capture_times={})
    cpu0, t0 = cpu_seconds(), time.monotonic()
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(args.seconds, stop.set)

    async def watch_stop_file() -> None:
        while not Path(args.stop_file).exists():  # noqa: ASYNC240, ASYNC110 (another process signals)
            await asyncio.sleep(0.1)
        stop.set()

    watcher = asyncio.create_task(watch_stop_file())
    source = PatternSource(args.width, args.height, args.fps)
    await publish(args.url, args.token, source, codec=args.codec, max_bitrate=args.bitrate, stats=stats, stop=stop)
    cpu = (cpu_seconds() - cpu0) / (time.monotonic() - t0)
    watcher.cancel()
    return {"sent": stats.frames_sent, "captured": stats.capture_times, "cpu_per_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--encode", action="store_true", help="the SDK encodes every frame (sdk-encode)")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--codec", default="vp8", choices=("vp8", "h264"))
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--bitrate", type=int, default=2_000_000)
    parser.add_argument("--gop", type=int, default=60)
    args = parser.parse_args()
    run = publish_encoding if args.encode else publish_pre_encoded
    args.out.write_text(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
