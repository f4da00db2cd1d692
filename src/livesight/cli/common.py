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
