"""Give freed heap memory back to the OS after large upstream bodies (glibc only; a no-op elsewhere).

Why (issue 8 item 2; measured with the burst of `tests/api/test_chat_memory.py`, which prints the
server's RSS when run with `pytest -s`): the base64 of a 640×360 frame (~440 KB) is larger than
glibc's initial mmap threshold, so the first bodies are mmapped and returned on free; but each free
raises glibc's dynamic threshold, after which the same sizes come from the heap arenas of whichever
threads built them and stay resident when freed. Without this trim the burst left 27 to 41 MB
resident (and ~4 MB with `MALLOC_MMAP_THRESHOLD_=131072` in the server's environment, i.e. a fixed
threshold); with it ~6 MB. `malloc_trim(0)` returns the free pages of every arena. It runs in a
worker thread, at most once per `MIN_INTERVAL_S`, after a body of at least `TRIM_AFTER_BYTES` was sent.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

TRIM_AFTER_BYTES = 8 * 1024 * 1024
MIN_INTERVAL_S = 1.0


def _load_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_trim = _load_trim()
_last = 0.0
_pending = False


def after_large_body(nbytes: int) -> None:
    """Call on the event loop when a body of `nbytes` has been let go; schedules a trim when worth it."""
    global _last, _pending
    if _trim is None or nbytes < TRIM_AFTER_BYTES or _pending:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    delay = max(0.0, _last + MIN_INTERVAL_S - time.monotonic())
    _pending = True
    loop.call_later(delay, _start, loop)


def _start(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_in_executor(None, _run).add_done_callback(_done)


def _run() -> None:
    assert _trim is not None
    _trim(0)


def _done(future: asyncio.Future[None]) -> None:
    global _last, _pending
    _last, _pending = time.monotonic(), False
    if not future.cancelled() and future.exception() is not None:
        log.warning("malloc_trim failed: %s", future.exception())
