"""Log lines and CPU time of one undecodable `file` source over 5 s (issue 8: a retry storm on main).

PYTHONPATH=$PWD/src .venv/bin/python bench/pull_backoff.py
"""

from __future__ import annotations

import logging
import resource
import tempfile
import time
from pathlib import Path

from tests.support.server import run_server

from livesight.core.clock import SystemClock


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    collect = _Collect()
    logging.getLogger().addHandler(collect)
    logging.getLogger().setLevel(logging.INFO)
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        media = tmp / "media"
        media.mkdir()
        (media / "broken.mp4").write_bytes(b"\0junk" * 1000)
        settings = {"source_file_dir": media, "preload_builtin_models": False}
        with run_server(tmp, clock=SystemClock(), **settings) as live, live.client(live.new_key()) as c:
            c.post("/v1/streams", json={"source": {"type": "file", "url": "broken.mp4"}})
            first, started = len(collect.records), cpu_s()
            time.sleep(5)
            used = cpu_s() - started
            ours = [r for r in collect.records[first:] if r.name.startswith("livesight.")]
            lines = [r for r in ours if r.name != "livesight.access"]
    print(f"undecodable file source, 5 s: {len(lines)} livesight log lines, {used:.2f} s CPU")


if __name__ == "__main__":
    main()
