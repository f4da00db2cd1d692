"""Helpers shared by subcommands."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from livesight.settings import ConfigError, Settings, load_settings


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="TOML config file (also LIVESIGHT_CONFIG)")


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
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
