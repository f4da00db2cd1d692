"""`livesight demo`: serve, publish the generated clip with the LiveKit SDK, ask livesight/ocr through
the openai SDK, print the answers with the frames used, keep running for `livesight ask` until Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

LIVESIGHT = str(Path(sys.executable).parent / "livesight")
pytestmark = [pytest.mark.webrtc, pytest.mark.timeout(240)]


def test_demo_reads_the_sign_then_keeps_serving_until_ctrl_c(tmp_path: Path) -> None:
    sign = "GATE 7 NORTH"  # not the default: the answer must come from the pixels
    env = {**os.environ, "LIVESIGHT_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [LIVESIGHT, "demo", "--port", "0", "--sign", sign],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 180
    try:
        while not lines or "Ctrl-C stops the demo." not in lines[-1]:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "demo exited early:\n" + "".join(lines) + proc.stderr.read()  # type: ignore[union-attr]
            lines.append(line)
            assert time.monotonic() < deadline, "".join(lines)
        out = "".join(lines)
        answers = [line for line in lines if line.startswith("A: ")]
        assert len(answers) == 2, out
        assert f'"{sign}"' in answers[0], out  # the newest frame: the sign, quoted
        assert re.search(r'"\d\d:\d\d:\d\d"', answers[0]), out  # and the clock
        assert f'"{sign}"' in answers[1] and "changed" in answers[1], out  # the last 5 s
        used = [line for line in lines if "frames used:" in line]
        assert re.search(r"frames used: frame \d+ \(stream time", used[0]), out
        assert re.search(r"frames used: \d+ frames \d+\.\.\d+", used[1]), out

        # the server keeps running: `livesight ask` works against it with the printed key and URL
        exported = re.search(r"export LIVESIGHT_URL=(\S+) LIVESIGHT_API_KEY=(\S+)", out)
        stream_id = re.search(r"created stream ([0-9a-f-]{36})", out)
        assert exported and stream_id, out
        ask_env = {**env, "LIVESIGHT_URL": exported.group(1), "LIVESIGHT_API_KEY": exported.group(2)}
        asked = subprocess.run(
            [LIVESIGHT, "ask", stream_id.group(1), "What does the sign say?"],
            env=ask_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert asked.returncode == 0, asked.stderr
        assert sign in asked.stdout
        assert "frames used: frame" in asked.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rest = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert "Traceback" not in rest[1], rest[1]


def test_demo_once_exits_cleanly(tmp_path: Path) -> None:
    env = {**os.environ, "LIVESIGHT_DATA_DIR": str(tmp_path)}
    proc = subprocess.run(
        [LIVESIGHT, "demo", "--port", "0", "--once"], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '"LOADING DOCK B"' in proc.stdout
    assert "Traceback" not in proc.stderr
