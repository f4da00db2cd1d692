"""Startup time and GET /v1/streams/{id} latency of a real `livesight serve` process on loopback.

    .venv/bin/python bench/api_latency.py [--requests 1000] [--runs 3]

Startup = from spawning the process to the first 200 from /readyz. Latency = wall time of sequential
requests over one keep-alive connection (httpx), as a client sees it, measured once the built-in
model has finished loading in the background (it takes a core for about a second after startup).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).with_name("livesight")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def one_run(n: int) -> tuple[float, list[float]]:
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "LIVESIGHT_DATA_DIR": data, "LIVESIGHT_LOG_LEVEL": "warning"}
        key = subprocess.run(
            [str(BIN), "keys", "create"], env=env, capture_output=True, text=True, check=True
        ).stdout.split()[0]
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        proc = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
        try:
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.01)
            startup = time.perf_counter() - started
            # let the built-in model finish loading in the background before measuring steady state
            while not all(m["status"] == "ready" for m in httpx.get(f"{base}/v1/models").json()["data"]):
                time.sleep(0.05)
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as c:
                sid = c.post("/v1/streams").json()["id"]
                for _ in range(50):  # warm-up
                    c.get(f"/v1/streams/{sid}")
                lat = []
                for _ in range(n):
                    t = time.perf_counter()
                    r = c.get(f"/v1/streams/{sid}")
                    lat.append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200
            return startup, lat
        finally:
            proc.terminate()
            proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    startups, p50s, p95s, p99s = [], [], [], []
    for _ in range(args.runs):
        startup, lat = one_run(args.requests)
        startups.append(startup)
        p50s.append(pct(lat, 50))
        p95s.append(pct(lat, 95))
        p99s.append(pct(lat, 99))
        print(
            f"run: startup {startup:.2f} s; GET p50 {pct(lat, 50):.2f} ms p95 {pct(lat, 95):.2f} ms "
            f"p99 {pct(lat, 99):.2f} ms over {args.requests} requests"
        )
    print(
        f"median of {args.runs} runs: startup {statistics.median(startups):.2f} s; GET /v1/streams/{{id}} "
        f"p50 {statistics.median(p50s):.2f} ms, p95 {statistics.median(p95s):.2f} ms, "
        f"p99 {statistics.median(p99s):.2f} ms"
    )


if __name__ == "__main__":
    main()
