"""Many watches at once: W watches at an interval on `livesight/ocr` over S streams.

    PYTHONPATH=src .venv/bin/python -m bench.watches [--watches 100] [--streams 10] [--interval-ms 1000] [--seconds 60]

The real app runs in this process (uvicorn on a free port, the real clock, the built-in OCR model,
preloaded before the window starts). A pusher puts a new 640x360 frame with a sign and a counter into
every stream twice a second, so `only_on_new_frames` never skips. Each watch asks "What does the sign
say?" about `frame_index=-1` and delivers every result to a webhook receiver on loopback. Reported over
the window: ticks, model runs, skips by reason (runs + skips = ticks), results delivered; the lag from a
tick (`at_ms`) to its webhook arriving, p50 and p99; the server process's CPU (cores used on average);
the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.frames import text_jpeg
from tests.support.server import LiveServer, run_server

from livesight.core.clock import SystemClock
from livesight.core.frame import IngestFrame, JpegPayload


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Receiver:
    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.time() * 1000
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with receiver.lock:
                    receiver.lags_ms.append(arrived - body["at_ms"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def pusher(server: LiveServer, stream_ids: list[str], stop: threading.Event) -> None:
    registry = server.components.registry
    frames = [text_jpeg(f"DOCK {i % 10}") for i in range(10)]
    n = 0

    def push() -> None:
        for sid in stream_ids:
            target = registry.ingest_target(sid)
            if target is not None:
                target.push_frame(IngestFrame("bench", float(n * 500), 640, 360, JpegPayload(frames[n % 10])))

    while not stop.wait(0.5):
        server.call(push)
        n += 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--watches", type=int, default=100)
    ap.add_argument("--streams", type=int, default=10)
    ap.add_argument("--interval-ms", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--max-calls", type=int, default=4, help="watch_max_concurrent_calls")
    args = ap.parse_args()
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        settings: dict[str, Any] = {
            "log_level": "warning",
            "max_active_watches_per_key": args.watches,
            "max_active_streams_per_key": args.streams,
            "watch_max_concurrent_calls": args.max_calls,
        }
        with run_server(Path(tmp), clock=SystemClock(), **settings) as server:
            key = server.new_key()
            with server.client(key) as c:
                while c.get("/v1/models").json()["data"][0]["status"] != "ready":
                    time.sleep(0.1)
                stream_ids = [c.post("/v1/streams").json()["id"] for _ in range(args.streams)]
                stop = threading.Event()
                threading.Thread(target=pusher, args=(server, stream_ids, stop), daemon=True).start()
                time.sleep(1.0)
                watch_ids = []
                for i in range(args.watches):
                    url = f"ovs://streams/{stream_ids[i % args.streams]}?frame_index=-1"
                    content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "sign?"}]
                    request = {"model": "livesight/ocr", "messages": [{"role": "user", "content": content}]}
                    body = {"request": request, "interval_ms": args.interval_ms, "webhook": {"url": receiver.url}}
                    r = c.post("/v1/watches", json=body)
                    assert r.status_code == 201, r.text
                    watch_ids.append(r.json()["id"])
                cpu0, wall0 = cpu_s(), time.monotonic()
                time.sleep(args.seconds)
                cpu1, wall1 = cpu_s(), time.monotonic()
                watches = [c.get(f"/v1/watches/{w}").json() for w in watch_ids]
                for w in watch_ids:
                    c.delete(f"/v1/watches/{w}")
                stop.set()
    counts = [w["counts"] for w in watches]
    runs = sum(k["runs"] for k in counts)
    skipped = {r: sum(k["skipped"][r] for k in counts) for r in ("busy", "no_new_frames", "no_change")}
    ticks = runs + sum(skipped.values())
    elapsed = wall1 - wall0
    print(
        f"{args.watches} watches every {args.interval_ms} ms over {args.streams} streams, livesight/ocr, "
        f"watch_max_concurrent_calls={args.max_calls}, {elapsed:.0f} s window (+ the creation ramp)"
    )
    print(
        f"ticks {ticks}, runs {runs} ({runs / max(ticks, 1):.0%}), skipped busy {skipped['busy']}, "
        f"no_new_frames {skipped['no_new_frames']}, no_change {skipped['no_change']}; "
        f"errors {sum(k['errors'] for k in counts)}; webhooks delivered {sum(k['deliveries'] for k in counts)}"
    )
    lags = receiver.lags_ms
    print(f"tick → webhook lag over {len(lags)} deliveries: p50 {pct(lags, 50):.0f} ms, p99 {pct(lags, 99):.0f} ms")
    print(f"server process CPU {(cpu1 - cpu0) / elapsed:.2f} cores on average; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
