"""Logs on stderr: readable lines on a terminal, one JSON object per line otherwise; never a secret.

`configure` installs one handler on the root logger, so every logger (ours, uvicorn, httpx, aiortc)
goes through the same two steps:

1. `RedactFilter` (a filter on that handler) rewrites each record before any formatter sees it: the
   message (with its args merged), the exception and stack text, and every `extra` value go through
   `core.redact.redact`; an `extra` whose name says it is a secret is masked whole. uvicorn's
   `color_message` extra (the message again, with ANSI colours) is dropped.
2. `JsonFormatter` or `TextFormatter` writes the line. `format="auto"` picks text when stderr is a TTY.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Literal, TextIO

from livesight.core.redact import MASK, is_secret_name, redact

LogFormat = Literal["auto", "json", "text"]

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_FLAG = "_livesight_redacted"
_DROPPED = {"color_message", _FLAG}  # color_message (uvicorn): the message again with ANSI colours

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
"""The id of the HTTP request being handled (set by api/middleware.py); read by `RequestIdFilter`."""


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (from `request_id_var`) to every record emitted inside a request that lacks one."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and k not in _DROPPED}


def _scrub(value: object, depth: int = 0) -> object:
    """`value` with secrets redacted: JSON-like values keep their shape (4 levels deep), others become text."""
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth < 4 and isinstance(value, dict):
        return {k: MASK if is_secret_name(str(k)) else _scrub(v, depth + 1) for k, v in value.items()}
    if depth < 4 and isinstance(value, list | tuple):
        return [_scrub(v, depth + 1) for v in value]
    return redact(str(value))


class RedactFilter(logging.Filter):
    """Rewrites every record in place so no formatter (or later handler) sees a secret."""

    def __init__(self) -> None:
        super().__init__()
        self._exc_formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _FLAG, False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the line (logging would print a traceback)
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exc_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record.__dict__.pop("color_message", None)
        for name, value in _extras(record).items():
            setattr(record, name, MASK if is_secret_name(name) else _scrub(value))
        setattr(record, _FLAG, True)
        return True


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_extras(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """`HH:MM:SS.mmm level   logger: message k=v …` (local time), then any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        clock = time.strftime("%H:%M:%S", time.localtime(record.created)) + f".{int(record.msecs):03d}"
        line = f"{clock} {record.levelname.lower():7} {record.name}: {record.getMessage()} {extra}".rstrip()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + record.stack_info
        return line


def resolve_format(fmt: LogFormat, stream: TextIO | None = None) -> Literal["json", "text"]:
    """`auto`: text when the stream (default stderr) is a terminal, JSON otherwise."""
    if fmt != "auto":
        return fmt
    stream = sys.stderr if stream is None else stream
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return "json"


def make_handler(fmt: LogFormat = "auto", stream: TextIO | None = None) -> logging.Handler:
    """A redacting handler writing `fmt` lines to `stream` (default stderr)."""
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactFilter())
    handler.setFormatter(JsonFormatter() if resolve_format(fmt, handler.stream) == "json" else TextFormatter())
    return handler


def configure(level: str = "info", *, fmt: LogFormat = "auto") -> logging.Handler:
    """One redacting stderr handler on the root logger (replacing any); returns it."""
    handler = make_handler(fmt)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "aioice", "aiortc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler
