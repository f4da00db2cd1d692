"""WatchJournal: the watches' writes to the store, on one writer thread, in order, never on the loop.

Without a store (persist_watches off) every method does nothing and `load` finds nothing. Writes
queued after `close` are dropped (the process is going away; what was queued before is written).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from livesight.core.jsontypes import JsonObject
from livesight.store.watches import SQLiteWatchStore, StoredResult, StoredWatch
from livesight.watches.model import RECORD, Watch
from livesight.watches.results import RESULT, WatchResult

log = logging.getLogger("livesight.watches")


class WatchJournal:
    def __init__(self, store: SQLiteWatchStore | None, results_kept: int, results_max_age_ms: int) -> None:
        self.store = store
        self._results_kept = results_kept
        self._results_max_age_ms = results_max_age_ms
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="livesight-watches")
        self.started = False  # writes before start() (the load) are not wanted
        self._closed = False

    @property
    def writing(self) -> bool:
        return self.store is not None and not self._closed

    def load(self) -> list[tuple[Watch, list[WatchResult]]]:
        """The stored watches with their newest results; a row that cannot be read is logged and skipped."""
        self.started = True
        out: list[tuple[Watch, list[WatchResult]]] = []
        for record, results in self.store.load(self._results_kept) if self.store else []:
            try:
                out.append(
                    (Watch.from_record(RECORD.validate_python(record)), [RESULT.validate_python(r) for r in results])
                )
            except ValueError as exc:  # pydantic's ValidationError is one
                log.error("stored watch %s cannot be read, skipped: %s", record.get("id"), exc)
        return out

    def pending_deliveries(self) -> list[tuple[str, str, JsonObject]]:
        return self.store.pending_deliveries() if self.store else []

    def persist(self, watch: Watch, result: WatchResult | None = None) -> None:
        """Write the watch (and a new recorded result) without waiting."""
        if self.writing and self.started:
            stored = StoredResult(result["seq"] or 0, result["at_ms"], result) if result is not None else None
            self._io.submit(self._write, _row(watch), stored)

    async def save(self, watch: Watch) -> None:
        """Write the watch and wait until it is on disk."""
        if self.store is not None:
            await asyncio.get_running_loop().run_in_executor(self._io, self._write, _row(watch), None)

    def add_delivery(self, msg_id: str, watch_id: str, payload: Mapping[str, object]) -> None:
        if self.writing:
            assert self.store is not None
            self._io.submit(self.store.add_delivery, msg_id, watch_id, payload)

    def drop_delivery(self, msg_id: str) -> None:
        if self.writing:
            assert self.store is not None
            self._io.submit(self.store.drop_delivery, msg_id)

    def forget(self, watch_ids: Sequence[str]) -> None:
        if watch_ids and self.writing:
            assert self.store is not None
            self._io.submit(self.store.forget, list(watch_ids))

    def close(self) -> None:
        self._closed = True
        self._io.shutdown(wait=True)
        if self.store is not None:
            self.store.close()

    def _write(self, row: StoredWatch, result: StoredResult | None) -> None:
        assert self.store is not None
        self.store.put(row, result)
        if result is not None:
            self.store.prune(row.id, self._results_kept, result.at_ms - self._results_max_age_ms)


def _row(watch: Watch) -> StoredWatch:
    return StoredWatch(watch.id, watch.owner, watch.state, watch.created_at_ms, watch.record())
