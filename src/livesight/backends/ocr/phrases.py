"""Small wording helpers (pure): positions, times, lists, quoting, time-like text."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

_ROWS = ("top", "middle", "bottom")
_COLS = ("left", "centre", "right")

# HH:MM or HH:MM:SS (optionally with fractions and am/pm), as on clocks and timestamp overlays.
TIME_RE = re.compile(
    r"(?<!\d)([01]?\d|2[0-3])[:.]([0-5]\d)(?:[:.]([0-5]\d)(?:[.,]\d+)?)?(?:\s?([ap]\.?m\.?))?(?!\d)", re.I
)
_COLON_TIME_RE = re.compile(r"(?<!\d)\d{1,2}:\d{2}(?!\d)")


def _cell(x: float, y: float) -> tuple[str, str]:
    return _ROWS[min(2, max(0, int(y * 3)))], _COLS[min(2, max(0, int(x * 3)))]


def region(x: float, y: float) -> str:
    """The third of the frame a point (fractions of width and height) lies in: 'the top left', 'the centre'…"""
    row, col = _cell(x, y)
    if row == "middle":
        return f"the {col}"
    return f"the {row}" if col == "centre" else f"the {row} {col}"


def where(x: float, y: float) -> str:
    """`region` with its preposition: 'at the top left', 'in the centre', 'on the right'…"""
    row, col = _cell(x, y)
    if row == "middle":
        return "in the centre" if col == "centre" else f"on the {col}"
    return f"at {region(x, y)}"


def quote(text: str) -> str:
    return f'"{text}"'


def join(items: Sequence[str], conjunction: str = "and") -> str:
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


def stream_time(ms: int) -> str:
    """Stream-clock time: '4.0 s', '1:02.5', '1:02:03.4'."""
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    if ms < 60_000:
        return f"{sign}{ms / 1000:.1f} s"
    minutes, rest = divmod(ms, 60_000)
    seconds = rest / 1000
    if minutes < 60:
        return f"{sign}{minutes}:{seconds:04.1f}"
    hours, minutes = divmod(minutes, 60)
    return f"{sign}{hours}:{minutes:02d}:{seconds:04.1f}"


def duration(ms: int) -> str:
    return f"{ms / 1000:.1f} s"


def wall_time(ms: int) -> str:
    """A wall-clock Unix time in ms as 'YYYY-MM-DD HH:MM:SS UTC'."""
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"{ms} ms after the Unix epoch"


def percent(value: float) -> str:
    return f"{value:.1f}%"


def is_time_like(text: str) -> bool:
    """Text that looks like a clock reading (has HH:MM, with a colon, or HH:MM:SS)."""
    match = TIME_RE.search(text)
    if match is None:
        return False
    return match.group(3) is not None or bool(_COLON_TIME_RE.search(text))


def clock_seconds(text: str) -> int | None:
    """Seconds since midnight of the first HH:MM:SS reading in the text, or None."""
    for match in TIME_RE.finditer(text):
        hours, minutes, seconds, meridiem = match.groups()
        if seconds is None:
            continue
        h = int(hours)
        if meridiem:
            if h > 12:
                continue
            h = h % 12 + (12 if meridiem.lower().startswith("p") else 0)
        return h * 3600 + int(minutes) * 60 + int(seconds)
    return None
