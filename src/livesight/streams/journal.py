"""Writes stream records to a `StreamStore` in order, off the event loop.

One writer thread runs every write in submission order (FIFO), so a later record of a stream never
lands before an earlier one. `write` returns a future; request handlers await `saved()` before they
answer, so a stream a client was told about (201, keepalive, delete) is on disk first. The reaper's
checkpoints are not awaited: their marks count as durable only when `on_done` runs (see
streams/durable.py for why frames stay safe meanwhile). Without a thread (`background=False`, unit
tests and tools) every write runs inline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from livesight.core.records import StreamRecord, StreamStore

log = logging.getLogger(__name__)


class Journal:
    def __init__(self, store: StreamStore, *, background: bool = False) -> None:
        self.store = store
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="livesight-store") if background else None
        self._last: Future[None] | None = None
        self._closed = False

    def write(self, records: Sequence[StreamRecord], on_done: Callable[[], None] | None = None) -> Future[None]:
        return self._submit(self._put, list(records), on_done)

    def forget(self, stream_ids: Sequence[str]) -> Future[None]:
        return self._submit(self._forget, list(stream_ids), None)

    async def saved(self) -> None:
        """Wait until every write submitted so far is committed (raises if the last one failed)."""
        last = self._last
        if last is not None and not last.done():
            await asyncio.wrap_future(last)
        if last is not None:
            last.result()

    def close(self) -> None:
        """Finish every queued write, then close the store (later writes are dropped)."""
        self._closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self.store.close()

    def _submit(self, fn: Callable[..., None], *args: object) -> Future[None]:
        if self._closed:  # a late frame at shutdown: no client can see it, the HTTP server has stopped
            future: Future[None] = Future()
            future.set_result(None)
            return future
        if self._executor is None:
            future = Future()
            try:
                fn(*args)
                future.set_result(None)
            except Exception as exc:
                future.set_exception(exc)
                raise
        else:
            future = self._executor.submit(fn, *args)
            future.add_done_callback(_log_failure)
        self._last = future
        return future

    def _put(self, records: list[StreamRecord], on_done: Callable[[], None] | None) -> None:
        self.store.put(records)
        if on_done is not None:
            on_done()

    def _forget(self, stream_ids: list[str], _: None) -> None:
        self.store.forget(stream_ids)


def _log_failure(future: Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("writing stream records failed", exc_info=future.exception())
