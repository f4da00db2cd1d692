"""How well the built-in model `livesight/ocr` reads the test pattern (`livesight publish test-pattern`).

    .venv/bin/python -m bench.pattern_ocr            # about 3 minutes on a 2-core machine
    .venv/bin/python -m bench.pattern_ocr --count 20

For each size and path (the server's stored JPEG; VP8 encode/decode at a bit rate, then the stored JPEG)
it renders frames 0-11 and random frame numbers, reads them with the real reader at the default
min_score, and counts frames whose "FRAME <n>" line, clock and label are read exactly. Prints a Markdown
table. In the VP8 runs each number is held for 3 frames, so the moving box and the counter jump.
"""

from __future__ import annotations

import argparse
import random

from tests.backends.ocr.test_pattern_ocr import NOW, clock_text, stored_jpeg, video_frame, vp8_round_trip

from livesight.backends.imaging import decode_rgb
from livesight.backends.ocr.reader import TextReader
from livesight.ingest.pattern import TestPattern

RUNS = [(1280, 720, None), (640, 360, None), (1920, 1080, None), (1280, 720, 1_700_000), (1280, 720, 300_000),
        (640, 360, 450_000), (640, 360, 150_000)]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=60, help="frame numbers per run (default 60)")
    args = parser.parse_args()
    reader = TextReader()
    reader.load()
    rnd = random.Random(7)
    numbers = list(range(min(12, args.count))) + [rnd.randrange(12, 100_000) for _ in range(args.count - 12)]
    print(f"frame numbers: 0-11 and {max(0, args.count - 12)} random; min_score {reader.min_score}; clock {NOW}+n/30")
    print("| size | path | FRAME n exact | clock exact | label exact | lowest FRAME score |")
    print("|---|---|---|---|---|---|")
    for width, height, bit_rate in RUNS:
        pattern = TestPattern(width, height)
        frames = [video_frame(pattern, n) for n in numbers]
        if bit_rate is not None:
            held = [video_frame(pattern, n) for n in numbers for _ in range(3)]
            frames = vp8_round_trip(held, bit_rate)[2::3]
        counter = clock = label = 0
        lowest = 1.0
        for n, frame in zip(numbers, frames, strict=True):
            lines = {line.text: line.score for line in reader.read(decode_rgb(stored_jpeg(frame)))}
            if f"FRAME {n}" in lines:
                counter += 1
                lowest = min(lowest, lines[f"FRAME {n}"])
            clock += clock_text(n) in lines
            label += pattern.label in lines
        path = "JPEG q80" if bit_rate is None else f"VP8 {bit_rate / 1e6:g} Mbit/s + JPEG q80"
        total = len(numbers)
        print(f"| {width}×{height} | {path} | {counter}/{total} | {clock}/{total} | {label}/{total} | {lowest:.3f} |")


if __name__ == "__main__":
    main()
