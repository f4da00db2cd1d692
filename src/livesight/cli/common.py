"""Helpers shared by subcommands."""

from __future__ import annotations

import argparse
import errno
import os
import shlex
import shutil
import socket
import sys
from typing import NoReturn

from livesight.settings import ConfigError, Settings, load_settings


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="TOML config file (also LIVESIGHT_CONFIG)")


def settings_from(args: argparse.Namespace, **overrides: object) -> Settings:
    try:
        return load_settings(getattr(args, "config", None), **{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        fail(str(exc))


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"livesight: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def local_base_url(host: str, port: int) -> str:
    """The http URL to reach a server bound to host:port from this machine (0.0.0.0/:: → 127.0.0.1)."""
    wildcard = host in ("0.0.0.0", "::")  # noqa: S104 (a comparison, not a bind)
    return f"http://{'127.0.0.1' if wildcard else host}:{port}"


def command(*args: str, argv0: str | None = None, cwd: str | None = None, search_path: str | None = None) -> str:
    """A shell command that runs this livesight again, for hints: `livesight ARGS` when the shell finds the
    running executable under that name, else its path (`.venv/bin/livesight` when under the current
    directory, absolute otherwise), or `python -m livesight.cli` when not started from the entry point."""
    exe = sys.argv[0] if argv0 is None else argv0
    here = os.getcwd() if cwd is None else cwd
    if os.path.basename(exe) != "livesight":
        words = [_shown_path(sys.executable, here), "-m", "livesight.cli"]
    elif os.sep not in exe:
        words = ["livesight"]  # found on PATH already
    else:
        absolute = os.path.normpath(os.path.join(here, exe))
        found = shutil.which("livesight", path=search_path)
        same = found is not None and os.path.exists(absolute) and os.path.samefile(os.path.join(here, found), absolute)
        words = ["livesight" if same else _shown_path(absolute, here)]
    return shlex.join([*words, *args])


def _shown_path(path: str, cwd: str) -> str:
    """`path` relative to `cwd` when inside it (`.venv/bin/livesight`), else absolute; symlinks kept."""
    absolute = os.path.normpath(os.path.join(cwd, path))
    relative = os.path.relpath(absolute, cwd)
    if relative.startswith(os.pardir):
        return absolute
    return relative if os.sep in relative else os.path.join(os.curdir, relative)


def bind_listener(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening socket on host:port, or a clear error and exit 1: checked before anything says
    "serving on", and handed to uvicorn, so the port cannot be taken in between."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # like uvicorn: reuse a TIME_WAIT port
        # Accepted connections inherit it: uvloop does not set TCP_NODELAY on a socket handed to it, and
        # without it a response's header and body writes wait on the client's delayed ACK (~40 ms).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        where = f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            fail(
                f"port {port} on {host} is already in use (is another livesight running? "
                f"`{command('serve', '--port', str(port + 1))}`, or set LIVESIGHT_PORT, picks another port)",
                1,
            )
        if exc.errno == errno.EACCES:
            fail(f"not allowed to listen on {where} (ports below 1024 need privileges): use --port", 1)
        if exc.errno == errno.EADDRNOTAVAIL:
            fail(f"cannot listen on {where}: {host} is not an address of this machine (use --host)", 1)
        fail(f"cannot listen on {where}: {exc.strerror or exc}", 1)
    sock.set_inheritable(True)
    return sock
