"""The ingest benchmark's clip: numbered 720p frames with camera-like motion and noise, encoded once.

The picture is `livesight.ingest.pattern.TestPattern` (its frame number is drawn into the pixels and read
back with `read_frame_number`), plus a blurred-noise texture that drifts 1 px every 2 frames (a slow camera
pan) and per-frame sensor noise (sigma ~3), so that a 2 Mbit/s encoder has real work to do, like a camera
and unlike the flat colour bars alone. The top row of number blocks is left untouched, so every decoded
frame still reads its own number.

It is encoded once per (codec, size, rate, bitrate, GOP, length) and cached as a pickle in the temp dir
(`livesight-bench-clips/`), so every publisher process of a run and every later run reuses it:

- VP8: libvpx, realtime, CBR at `bitrate` (minrate = maxrate = bitrate), a keyframe every `gop` frames;
- H264: libx264 constrained baseline, veryfast/zerolatency, CBR-ish VBV at `bitrate`, a keyframe (IDR, with
  SPS/PPS in front) every `gop` frames, Annex-B.

`python -m bench.clip --codec vp8` prints the measured bitrate and keyframe positions of the clip.
"""

from __future__ import annotations

import argparse
import os
import pickle
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from livesight.ingest.pattern import TestPattern

CACHE_VERSION = 1


@dataclass(frozen=True)
class ClipSpec:
    codec: str = "vp8"  # vp8 | h264
    width: int = 1280
    height: int = 720
    fps: int = 30
    bitrate: int = 2_000_000
    gop: int = 60
    frames: int = 300  # the loop: frame numbers in the pixels repeat every `frames`

    @property
    def cache_path(self) -> Path:
        name = (
            f"{self.codec}-{self.width}x{self.height}-{self.fps}-{self.bitrate}-g{self.gop}-n{self.frames}"
            f"-v{CACHE_VERSION}.pickle"
        )
        return Path(tempfile.gettempdir()) / "livesight-bench-clips" / name


Clip = list[tuple[bytes, bool]]
"""Encoded frames in order: (bitstream, is_keyframe)."""


def _texture(height: int, width: int, rng: np.random.Generator) -> NDArray[np.int16]:
    """Blurred noise, about +-12 grey levels: a textured "room" that costs bits when it moves."""
    small = rng.normal(0, 12, (height // 8 + 2, width // 8 + 2))
    big = np.kron(small, np.ones((8, 8)))[:height, :width]
    blurred = (big + np.roll(big, 4, 0) + np.roll(big, 4, 1) + np.roll(big, (4, 4), (0, 1))) / 4
    return blurred.astype(np.int16)


def render_frames(spec: ClipSpec) -> list[NDArray[np.uint8]]:
    """The clip's frames as I420 arrays of shape (height * 3 / 2, width)."""
    pattern = TestPattern(spec.width, spec.height, label="LIVESIGHT BENCH CLIP")
    rng = np.random.default_rng(7)
    w, h = spec.width, spec.height
    top = pattern.block  # the number blocks stay clean
    texture = _texture(h, w * 2, rng)
    noise = [rng.normal(0, 3, (h, w)).astype(np.int16) for _ in range(8)]
    frames = []
    for n in range(spec.frames):
        data = np.frombuffer(pattern.render(n, now=1_700_000_000 + n / spec.fps), np.uint8)
        data = data.reshape(h * 3 // 2, w).copy()
        shift = (n // 2) % w
        luma = data[top:h].astype(np.int16) + texture[top:h, shift : shift + w]
        luma += np.roll(noise[n % len(noise)], n * 37, axis=1)[top:h]
        data[top:h] = np.clip(luma, 0, 255).astype(np.uint8)
        frames.append(data)
    return frames


def encode(spec: ClipSpec) -> Clip:
    import av

    if spec.codec == "vp8":
        codec = av.CodecContext.create("libvpx", "w")
        rate = str(spec.bitrate)
        codec.options = {
            "deadline": "realtime",
            "cpu-used": "8",
            "lag-in-frames": "0",
            "minrate": rate,
            "maxrate": rate,
            "bufsize": str(spec.bitrate // 2),
            "keyint_min": str(spec.gop),
            "auto-alt-ref": "0",
        }
    elif spec.codec == "h264":
        codec = av.CodecContext.create("libx264", "w")
        kbps = spec.bitrate // 1000
        codec.options = {
            "preset": "veryfast",
            "tune": "zerolatency",
            "profile": "baseline",
            "x264-params": (
                f"keyint={spec.gop}:min-keyint={spec.gop}:scenecut=0:bframes=0:repeat-headers=1:"
                f"vbv-maxrate={kbps}:vbv-bufsize={kbps // 2}:nal-hrd=cbr:force-cfr=1"
            ),
        }
    else:
        raise ValueError(f"unknown codec {spec.codec!r} (vp8 or h264)")
    codec.width, codec.height, codec.pix_fmt = spec.width, spec.height, "yuv420p"
    codec.bit_rate, codec.time_base, codec.gop_size = spec.bitrate, Fraction(1, spec.fps), spec.gop
    codec.framerate = Fraction(spec.fps, 1)
    packets = []
    for n, data in enumerate(render_frames(spec)):
        frame = av.VideoFrame.from_ndarray(data, format="yuv420p")
        frame.pts = n
        packets += codec.encode(frame)
    packets += codec.encode(None)
    clip = [(bytes(p), bool(p.is_keyframe)) for p in packets]
    if len(clip) != spec.frames or not clip[0][1]:
        raise RuntimeError(f"the {spec.codec} encoder gave {len(clip)} packets for {spec.frames} frames")
    return clip


def load_or_encode(spec: ClipSpec) -> Clip:
    """The cached clip, encoded first if this is the first run with `spec`."""
    path = spec.cache_path
    if path.exists():
        cached: Clip = pickle.loads(path.read_bytes())  # our own cache file, written below
        return cached
    clip = encode(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(pickle.dumps(clip))
    tmp.replace(path)  # atomic: concurrent runs never read half a file
    return clip


def describe(spec: ClipSpec, clip: Clip) -> dict[str, object]:
    total = sum(len(data) for data, _ in clip)
    return {
        "codec": spec.codec,
        "frames": len(clip),
        "bitrate_bps": round(total * 8 * spec.fps / len(clip)),
        "keyframes_at": [i for i, (_, key) in enumerate(clip) if key],
        "first_keyframe_bytes": len(clip[0][0]),
        "cache": str(spec.cache_path),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codec", default="vp8", choices=("vp8", "h264"))
    parser.add_argument("--bitrate", type=int, default=2_000_000)
    parser.add_argument("--gop", type=int, default=60)
    args = parser.parse_args()
    spec = ClipSpec(codec=args.codec, bitrate=args.bitrate, gop=args.gop)
    print(describe(spec, load_or_encode(spec)))


if __name__ == "__main__":
    main()
