"""The CLI as a user runs it: keys management, and `serve` from first start to SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from livesight.cli import main
from livesight.cli.common import command
from livesight.cli.demo import demo_key
from livesight.cli.serve import first_key_banner
from livesight.settings import load_settings
from livesight.store.keys import SQLiteKeyStore

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
    env = {**os.environ, "LIVESIGHT_DATA_DIR": str(tmp_path), "LIVESIGHT_LOG_FORMAT": "text"}
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


def test_serve_refuses_a_taken_port_before_saying_it_serves(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {**os.environ, "LIVESIGHT_DATA_DIR": str(tmp_path)}
        proc = subprocess.run(
            [str(BIN), "serve", "--port", str(port)], env=env, capture_output=True, text=True, timeout=60, check=False
        )
    assert proc.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in proc.stderr
    assert "another livesight" in proc.stderr and "--port" in proc.stderr and "LIVESIGHT_PORT" in proc.stderr
    assert "serving on" not in proc.stderr and "Traceback" not in proc.stderr
    assert "LIVESIGHT_API_KEY=" not in proc.stderr  # no key was made for a server that never ran


def _serve_until_started(tmp_path: Path, stderr: int, env_extra: dict[str, str]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVESIGHT_")}
    env.update({"LIVESIGHT_DATA_DIR": str(tmp_path), "LIVESIGHT_PRELOAD_BUILTIN_MODELS": "false", **env_extra})
    port = free_port()
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=env, stderr=stderr, text=True)
    wait_ready(f"http://127.0.0.1:{port}", proc)
    proc.send_signal(signal.SIGTERM)
    return proc


@pytest.mark.timeout(60)
def test_serve_logs_json_without_escapes_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    proc = _serve_until_started(tmp_path, subprocess.PIPE, {})
    err = proc.communicate(timeout=20)[1]
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(r["msg"] == "Application startup complete." for r in records), err
    assert all("color_message" not in r for r in records)
    assert "\x1b" not in err and "\\u001b" not in err


@pytest.mark.timeout(60)
def test_serve_logs_readable_text_on_a_terminal(tmp_path: Path) -> None:
    primary, secondary = pty.openpty()
    try:
        proc = _serve_until_started(tmp_path, secondary, {})
        proc.wait(20)
        os.close(secondary)
        err = b""
        with contextlib.suppress(OSError):  # EIO once everything is read
            while chunk := os.read(primary, 65536):
                err += chunk
    finally:
        os.close(primary)
    text = err.decode()
    assert re.search(r"^\d\d:\d\d:\d\d\.\d{3} info +uvicorn.error: Application startup complete\.", text, re.M), text
    assert '{"ts"' not in text and "\x1b" not in text and "color_message" not in text


def test_the_hint_command_is_one_the_shell_can_run(tmp_path: Path) -> None:
    bindir = tmp_path / "proj" / ".venv" / "bin"
    bindir.mkdir(parents=True)
    exe = bindir / "livesight"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    proj, elsewhere = str(tmp_path / "proj"), str(tmp_path)
    # started as `.venv/bin/livesight` (make run) or by absolute path, not on PATH: its path, relative when inside
    assert command("ask", "s", argv0=".venv/bin/livesight", cwd=proj, search_path="/nonexistent") == (
        ".venv/bin/livesight ask s"
    )
    assert command("ask", argv0=str(exe), cwd=proj, search_path="/nonexistent") == ".venv/bin/livesight ask"
    assert command("keys", "list", argv0=str(exe), cwd=elsewhere + "/other", search_path="") == (f"{exe} keys list")
    # on PATH: the bare name
    assert command("ask", argv0=str(exe), cwd=elsewhere, search_path=str(bindir)) == "livesight ask"
    assert command("serve", argv0="livesight") == "livesight serve"
    # arguments are quoted for the shell
    assert command("ask", "s", "What does the sign say?", argv0=str(exe), cwd=proj, search_path="") == (
        ".venv/bin/livesight ask s 'What does the sign say?'"
    )
    # not started from the entry point (python -m, tests): the interpreter runs the package
    assert command("keys", "create", argv0="/x/pytest").endswith(" -m livesight.cli keys create")


def test_hints_name_the_running_executable(tmp_path: Path) -> None:
    # `livesight` is not on this PATH: the hint names the executable that ran, as `make run` starts it
    env = {**os.environ, "LIVESIGHT_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [str(BIN), "keys", "list"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True
    )
    assert f"no keys yet: run `{BIN} keys create`" in proc.stdout
    with contextlib.closing(SQLiteKeyStore(tmp_path / "k.db")) as store:
        banner = first_key_banner(load_settings(data_dir=tmp_path), store)
    assert banner and f"`{command('keys', 'create')}` makes more" in banner


def test_demo_reuses_its_key_and_the_first_key_banner_still_appears(tmp_path: Path) -> None:
    store = SQLiteKeyStore(tmp_path / "livesight.db")
    first, plain, reused = demo_key(store, tmp_path)
    assert not reused and first.demo and plain.startswith("ovs-")
    path = tmp_path / "demo.key"
    assert path.read_text().strip() == plain and stat.S_IMODE(path.stat().st_mode) == 0o600
    again, plain_again, reused = demo_key(store, tmp_path)
    assert reused and (again.id, plain_again) == (first.id, plain)
    assert len(store.list()) == 1
    # `serve` after `demo`: the user still gets a key of their own, once
    settings = load_settings(data_dir=tmp_path)
    banner = first_key_banner(settings, store)
    assert banner
    shown = re.search(r"LIVESIGHT_API_KEY=(ovs-\S+)", banner)
    assert shown and store.verify(shown.group(1)) and shown.group(1) != plain
    assert first_key_banner(settings, store) is None
    # a revoked (or lost) demo key is replaced, and the file follows
    store.revoke(first.id)
    path.chmod(0o644)
    third, plain_third, reused = demo_key(store, tmp_path)
    assert not reused and third.id != first.id and store.verify(plain_third)
    assert path.read_text().strip() == plain_third and stat.S_IMODE(path.stat().st_mode) == 0o600
    store.close()


def test_keys_made_by_earlier_demos_do_not_count_as_the_users_first_key(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(db)) as old:  # the schema before the demo flag
        old.execute(
            "CREATE TABLE api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', prefix TEXT NOT NULL, "
            "digest TEXT NOT NULL UNIQUE, created_at_ms INTEGER NOT NULL, revoked_at_ms INTEGER)"
        )
        old.execute("INSERT INTO api_keys VALUES ('key_a', 'demo', 'ovs-aaaaaa', 'd1', 1, NULL)")
        old.commit()
    store = SQLiteKeyStore(db)
    assert store.count() == 1 and store.count(include_demo=False) == 0
    assert store.list()[0].demo
    store.create("mine")
    assert store.count(include_demo=False) == 1
    store.close()


@pytest.mark.timeout(120)
def test_demo_run_uses_the_kept_key(tmp_path: Path) -> None:
    with contextlib.closing(SQLiteKeyStore(tmp_path / "livesight.db")) as store:
        record, plain, _ = demo_key(store, tmp_path)
    env = {**os.environ, "LIVESIGHT_DATA_DIR": str(tmp_path)}
    # --timeout 0.1: stop right after the key and stream are set up (no video is needed for this)
    proc = subprocess.run(
        [str(BIN), "demo", "--port", "0", "--once", "--timeout", "0.1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert f"using the demo API key {record.id} (kept in {tmp_path / 'demo.key'}): {plain}" in proc.stdout
    with contextlib.closing(SQLiteKeyStore(tmp_path / "livesight.db")) as store:
        assert [k.id for k in store.list()] == [record.id]
