"""Memory per chat request is bounded and returns to baseline (issue 8 item 2), measured on a real server
in a subprocess (VmRSS of that process only; the fake vLLM runs in the test process).

The burst: 8 requests, 4 at a time, each with 200 `image_url` parts over 20 distinct 640×360 noise
frames (~330 KB of JPEG each), so each body sends ~88 MB to the upstream. The test prints what it
measured: `PYTHONPATH=src .venv/bin/python -m pytest -s tests/api/test_chat_memory.py`. On the 2-core
dev box, before the fix (main's src on PYTHONPATH) the server's RSS rose ~970 MB above its baseline
and stayed ~630 MB above it; with it, ~40 MB at the peak and ~6 MB after.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import Any

import httpx

from tests.support.fake_upstream import MODEL, run_fake_upstream
from tests.support.polling import wait_for
from tests.support.server_process import server_process

FRAMES = 20
PARTS = 200
REQUESTS = 8
CONCURRENCY = 4
PEAK_MARGIN_MB = 300  # what the burst may add while it runs (measured ~40 MB with the fix, ~970 MB without)
AFTER_MARGIN_MB = 64  # what may stay resident after it (measured ~6 MB with the fix, ~630 MB without)


def test_memory_is_bounded_during_a_burst_of_large_requests_and_returns_after() -> None:
    with run_fake_upstream(validate=False) as fake:  # reads each body whole, answers at once
        model = {"id": "qwen", "base_url": fake.base_url, "upstream_model": MODEL, "profile": "vllm"}
        spec = {"frames": FRAMES, "settings": {"builtin_models": [], "models": [model]}}
        with server_process(spec) as server:
            parts = [
                {
                    "type": "image_url",
                    "image_url": {"url": f"ovs://streams/{server.stream_id}?frame_index={-1 - i % FRAMES}"},
                }
                for i in range(PARTS)
            ]
            body: dict[str, Any] = {"model": "qwen", "messages": [{"role": "user", "content": [*parts]}]}
            headers = {"Authorization": f"Bearer {server.key}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
                warm = {"model": "qwen", "messages": [{"role": "user", "content": parts[:1]}]}
                assert client.post("/v1/chat/completions", json=warm).status_code == 200
                baseline = server.rss_mb()
                peak = baseline
                done = threading.Event()

                def watch() -> None:
                    nonlocal peak
                    while not done.is_set():
                        peak = max(peak, server.rss_mb())
                        time.sleep(0.02)

                watcher = threading.Thread(target=watch)
                watcher.start()
                try:
                    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
                        send = lambda _: client.post("/v1/chat/completions", json=body)  # noqa: E731
                        statuses = [r.status_code for r in pool.map(send, range(REQUESTS))]
                finally:
                    done.set()
                    watcher.join()
            print(f"\nserver RSS: baseline {baseline:.0f} MB, peak {peak:.0f} MB, after {server.rss_mb():.0f} MB")
            assert statuses == [200] * REQUESTS
            assert peak - baseline < PEAK_MARGIN_MB, f"RSS rose from {baseline:.0f} MB to {peak:.0f} MB"
            wait_for(
                lambda: server.rss_mb() - baseline < AFTER_MARGIN_MB,
                timeout=10,
                what=f"RSS to return near its baseline of {baseline:.0f} MB (now {server.rss_mb():.0f} MB)",
            )
