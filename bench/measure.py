"""Process measurements for the benchmarks: CPU (this process, its threads, other processes), RSS, event-loop
lag, percentiles. Linux only (`/proc`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import threading


def rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds() -> float:
    """CPU time of this process (all its threads), user + system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _stat_cpu(path: str) -> float:
    with open(path) as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu(pids: list[int]) -> float:
    """CPU seconds of other processes (all their threads), summed; a process that has exited counts 0."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += _stat_cpu(f"/proc/{pid}/stat")
    return total


def thread_cpu() -> dict[int, float]:
    """CPU seconds of each thread of this process, by native thread id."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):
            out[int(tid)] = _stat_cpu(f"/proc/self/task/{tid}/stat")
    return out


def cpu_by_role(before: dict[int, float], after: dict[int, float]) -> dict[str, float]:
    """Where the server's CPU went: event loop (RTP/SRTP/HTTP), aiortc decoders, JPEG workers, other."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    roles: dict[str, float] = {}
    for tid, seconds in after.items():
        name = names.get(tid, "other")
        role = (  # native codec threads (FFmpeg H264 frame threads) are "other"
            "event loop (RTP, SRTP, jitter buffer, signalling, HTTP)" if name == "livesight-test-server"
            else "JPEG workers (range conversion + libjpeg-turbo)" if name.startswith("livesight-jpeg")
            else "aiortc decoder threads (video decode + frame copy)" if "decoder" in name
            else "other (bench main thread, libraries)"
        )  # fmt: skip
        roles[role] = roles.get(role, 0.0) + seconds - before.get(tid, 0.0)
    return roles


async def loop_lag(seconds: float, interval: float = 0.02) -> list[float]:
    """How late the event loop wakes a scheduled `interval` sleep, in ms (its blocking, seen from inside)."""
    loop = asyncio.get_running_loop()
    lags = []
    end = loop.time() + seconds
    while loop.time() < end:
        due = loop.time() + interval
        await asyncio.sleep(interval)
        lags.append((loop.time() - due) * 1000)
    return lags


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def median(values: list[float]) -> float:
    return percentile(values, 50)
