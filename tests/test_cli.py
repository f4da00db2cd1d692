"""The CLI as a user runs it: keys management, and `serve` from first start to SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from livesight.cli import main

BIN = Path(sys.executable).with_name("livesight")


def test_keys_create_list_revoke(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LIVESIGHT_DATA_DIR", str(tmp_path))
    assert main(["keys", "list"]) == 0
    assert "no keys yet" in capsys.readouterr().out
    assert main(["keys", "create", "--name", "robot"]) == 0
    out = capsys.readouterr().out
    plain = out.splitlines()[0]
    assert plain.startswith("ovs-")
    key_id = re.search(r"id (key_\w+)", out)
    assert key_id
    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert "robot" in listing and "active" in listing and plain not in listing
    assert main(["keys", "revoke", key_id.group(1)]) == 0
    assert main(["keys", "list"]) == 0
    assert "revoked" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["keys", "revoke", "key_nope"])
    assert info.value.code == 1


def test_bad_config_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("port = 'x'")
    with pytest.raises(SystemExit):
        main(["keys", "list", "--config", str(cfg)])
    err = capsys.readouterr().err
    assert "port" in err and "Traceback" not in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_serve(tmp_path: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "LIVESIGHT_DATA_DIR": str(tmp_path), "LIVESIGHT_LOG_JSON": "false"}
    return subprocess.Popen(
        [str(BIN), "serve", "--port", str(port)], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )


def wait_ready(base: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "server exited"
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError("server never became ready")


@pytest.mark.timeout(90)
def test_serve_first_key_then_graceful_sigterm(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_serve(tmp_path, port)
    try:
        wait_ready(base, proc)
        # the banner with the first key was printed before the server started
        assert proc.stderr is not None
        banner = ""
        while "export LIVESIGHT_API_KEY=" not in banner:
            banner += proc.stderr.readline()
        key = re.search(r"LIVESIGHT_API_KEY=(ovs-\S+)", banner)
        assert key
        r = httpx.post(f"{base}/v1/streams", headers={"Authorization": f"Bearer {key.group(1)}"})
        assert r.status_code == 201
        assert r.json()["publish"]["url"] == f"ws://127.0.0.1:{port}"
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=20)[1]
        # uvicorn re-raises the captured SIGTERM after a clean shutdown
        assert proc.returncode in (0, -signal.SIGTERM)
        assert "shutdown: kept 1 active streams" in rest
        assert "Application shutdown complete" in rest
        assert "Traceback" not in rest
        assert key.group(1) not in rest  # keys are never logged
    finally:
        if proc.poll() is None:
            proc.kill()
    # second start: the store has a key, so no new one is printed
    proc = start_serve(tmp_path, port)
    try:
        wait_ready(base, proc)
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=20)[1]
        assert "LIVESIGHT_API_KEY=" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
