"""What asking for a keyframe every `keyframe_interval_seconds` costs a publisher in bitrate.

    scripts/netns --run .venv/bin/python -m bench.keyframes [--seconds 20] [--rounds 2]

The official `livekit` SDK publishes the 1280x720 test pattern at 30 fps (VP8, then H264) into a
livesight server whose ingest asks for a keyframe every 2 s (the default), and into one that never asks
(`keyframe_interval_s` 3600: libwebrtc then sends keyframes only when it must). Rounds alternate so
drift hits both alike. Reported per run: the stored bitstream rate (retained bytes over the stream
time they cover, i.e. what the publisher sent and the store keeps), keyframes seen, mean GOP length.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
from pathlib import Path

from livekit import rtc
from tests.e2e.media import publish_pattern
from tests.support.server import LiveServer, run_server

from livesight.core.clock import SystemClock
from livesight.core.frame import EncodedPayload
from livesight.ingest.options import IngestOptions

CODECS = {"vp8": rtc.VideoCodec.VP8, "h264": rtc.VideoCodec.H264}


def measure(server: LiveServer, codec: str, seconds: float) -> dict[str, float]:
    key = server.new_key()
    with server.client(key) as c:
        stream = c.post("/v1/streams").json()
    options = rtc.TrackPublishOptions(
        source=rtc.TrackSource.SOURCE_CAMERA,
        simulcast=False,
        video_codec=CODECS[codec],
        degradation_preference=rtc.DegradationPreference.MAINTAIN_RESOLUTION.value,
    )
    publish = stream["publish"]
    asyncio.run(
        publish_pattern(publish["url"], publish["token"], seconds=seconds, width=1280, height=720, fps=30,
                        options=options)
    )  # fmt: skip

    def facts() -> tuple[int, int, int, int]:
        registry = server.components.registry
        window = registry.window(registry._streams[stream["id"]])
        assert window is not None and window.first_index is not None and window.last_index is not None
        payloads = [window.payload(i) for i in range(window.first_index, window.last_index + 1)]
        keys = sum(1 for p in payloads if isinstance(p, EncodedPayload) and p.keyframe)
        size = sum(p.nbytes for p in payloads if p is not None)
        span = window.info(window.last_index).timestamp_ms - window.info(window.first_index).timestamp_ms
        return size, span, keys, len(payloads)

    size, span_ms, keys, count = server.call(facts)
    return {
        "mbit_s": round(size * 8 / span_ms / 1000, 3),
        "keyframes": keys,
        "frames": count,
        "mean_gop_frames": round(count / max(keys, 1), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    out: dict[str, dict[str, list[dict[str, float]]]] = {}
    for codec in CODECS:
        for _ in range(args.rounds):
            for name, interval in (("every 2 s", 2.0), ("never asked", 3600.0)):
                options = IngestOptions(keyframe_interval_s=interval)
                with run_server(
                    Path(tempfile.mkdtemp()), clock=SystemClock(), create_app_kwargs={"ingest_options": options}
                ) as server:
                    result = measure(server, codec, args.seconds)
                out.setdefault(codec, {}).setdefault(name, []).append(result)
                print(codec, name, result, flush=True)
    for codec, runs in out.items():
        for name, results in runs.items():
            rate = statistics.median(r["mbit_s"] for r in results)
            gop = statistics.median(r["mean_gop_frames"] for r in results)
            print(f"{codec:5} {name:12} median {rate:.3f} Mbit/s, mean GOP {gop:.0f} frames")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
