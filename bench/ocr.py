"""Latency of the built-in offline model `livesight/ocr` on generated frames.

    .venv/bin/python -m bench.ocr            # about a minute on a 2-core machine
    .venv/bin/python -m bench.ocr --runs 20 --det min:736   # rapidocr's own detector scaling, for comparison

Measures: model load; per-frame OCR (decoded frame → lines) on 1280×720 and 640×480 frames; decode +
statistics per frame; a whole `answer` for one frame, a 5 s segment at 1 fps and a 60 s segment at 2 fps
(120 frames, text read in 6); and the smallest text height read exactly. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
from PIL import Image
from tests.backends.ocr.pictures import BLACK, WHITE, Scene, Text, draw, jpeg

from livesight.backends.imaging import decode_rgb, decode_small
from livesight.backends.ocr import OcrModel
from livesight.backends.ocr.reader import TextReader
from livesight.backends.ocr.stats import frame_stats
from livesight.core.media import MediaFrame, MediaItem


def cctv(width: int, height: int, second: int = 7) -> Image.Image:
    """A CCTV-like frame: timestamp overlay, a shop sign, a licence plate, a clock and a moving disc."""
    s = height / 720
    return draw(
        Scene(
            width=width,
            height=height,
            texts=(
                Text(f"CAM 03 2025-11-24 21:50:{second:02d}", int(20 * s), int(20 * s), max(10, int(28 * s))),
                Text("LOADING DOCK B", width // 3, height // 2 - int(40 * s), int(56 * s), BLACK, WHITE),
                Text("KX 4821", int(width * 0.1), int(height * 0.75), int(40 * s), BLACK, (240, 200, 40)),
                Text(f"21:50:{second:02d}", width - int(300 * s), height - int(70 * s), int(40 * s)),
            ),
            discs=((int(width * 0.7), int(height * 0.25), int(60 * s), (230, 40, 40)),),
        )
    )


def timed(fn: Callable[[], object], runs: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def row(name: str, ms: list[float]) -> str:
    ms = sorted(ms)
    p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
    return f"| {name} | {len(ms)} | {ms[0]:.0f} | {statistics.median(ms):.0f} | {p90:.0f} |"


def segment(count: int, step_ms: int, width: int, height: int) -> MediaItem:
    frames = tuple(
        MediaFrame(jpeg(cctv(width, height, i % 60)), width, height, index=i, timestamp_ms=i * step_ms)
        for i in range(count)
    )
    return MediaItem(kind="video", url="bench", frames=frames)


def smallest_readable(reader: TextReader, width: int, height: int) -> int | None:
    """Cap height (px) from which every larger size of the default font up to 40 px is read exactly."""
    ok = {}
    for size in range(6, 41):
        scene = Scene(
            width=width, height=height, texts=(Text("GATE 2741", width // 3, height // 2, size, BLACK, WHITE),)
        )
        read = [line.text for line in reader.read(decode_rgb(jpeg(draw(scene))))]
        ok[size] = read in (["GATE 2741"], ["GATE2741"])
    failing = [size for size, good in ok.items() if not good]
    start = max(failing) + 1 if failing else 6
    return int(np.ceil(start * 0.72)) if start <= 40 else None  # cap height of the default font ≈ 0.72 × size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--det", default="max:960", help="detector scaling, e.g. max:960 (ours) or min:736 (rapidocr)")
    args = parser.parse_args()
    kind, side = args.det.split(":")
    det = ("max" if kind == "max" else "min", int(side))

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start; detector {args.det}\n")
    start = time.perf_counter()
    reader = TextReader(det_limit=det)  # type: ignore[arg-type]
    reader.load()
    load_ms = (time.perf_counter() - start) * 1000

    print("| measurement | runs | min ms | p50 ms | p90 ms |\n|---|---|---|---|---|")
    print(f"| load (3 ONNX models + self-test) | 1 | {load_ms:.0f} | {load_ms:.0f} | {load_ms:.0f} |")
    for width, height in ((1280, 720), (640, 480)):
        data = jpeg(cctv(width, height))
        rgb = decode_rgb(data)
        read = [line.text for line in reader.read(rgb)]
        print(
            row(
                f"OCR one {width}×{height} frame (reads {len(read)} lines)",
                timed(lambda r=rgb: reader.read(r), args.runs),
            )
        )
        print(row(f"decode + statistics, {width}×{height}", timed(lambda d=data: frame_stats(*decode_small(d)), 50)))
        item = MediaItem(kind="image", url="bench", frames=(MediaFrame(data, width, height, index=1, timestamp_ms=0),))
        print(
            row(
                f"answer, one {width}×{height} frame",
                timed(lambda i=item: OcrModel(reader=reader).answer("what does the sign say?", [i]), args.runs),
            )
        )
    five = segment(5, 1000, 1280, 720)
    sixty = segment(120, 500, 1280, 720)
    few = max(2, args.runs // 3)
    print(
        row(
            "answer, 5 s at 1 fps (5 frames 720p, all read)",
            timed(lambda: OcrModel(reader=reader).answer("what happened?", [five]), few),
        )
    )
    print(
        row(
            "answer, 60 s at 2 fps (120 frames 720p, 6 read)",
            timed(lambda: OcrModel(reader=reader).answer("what happened?", [sixty]), few),
        )
    )
    cached = OcrModel(reader=reader)
    print(row("answer, 5 s again (text cached)", timed(lambda: cached.answer("what happened?", [five]), args.runs)))
    for width, height in ((1280, 720), (640, 480)):
        smallest = smallest_readable(reader, width, height)
        print(f"| smallest text read exactly in {width}×{height} (cap height px) | 1 | {smallest} | | |")
    print(f"\nload average {os.getloadavg()[0]:.2f} at end")
    print(f"read in the 720p frame: {[line.text for line in reader.read(decode_rgb(jpeg(cctv(1280, 720))))]}")


if __name__ == "__main__":
    main()
