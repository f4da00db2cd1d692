"""Watch definitions and their recent results in SQLite (the same file as keys and streams, own tables).

A watch is one row of JSON (`Watch.record()`), rewritten when its state or counters change; each
recorded result is one row; each webhook delivery not yet done is one row until it lands or is given
up. Retention is bounded per watch by count and by age (`prune`), and ended watches are forgotten
after a while (`forget`). WAL with `synchronous=NORMAL`, as store/streams.py:
a commit survives a SIGKILL of the process. Not thread-safe beyond its lock: the service calls it
from one writer thread.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from livesight.core.jsontypes import JsonObject
from livesight.store.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS watches (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS watch_deliveries (
    msg_id TEXT PRIMARY KEY,
    watch_id TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS watch_results (
    watch_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (watch_id, seq)
);
"""


def _dump(value: Mapping[str, object]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _object(text: str) -> JsonObject:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("a stored watch row is not a JSON object")
    return value


@dataclass(frozen=True, slots=True)
class StoredWatch:
    """A watch row: the columns the store queries, and the whole record as JSON."""

    id: str
    owner: str
    state: str
    created_at_ms: int
    body: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class StoredResult:
    seq: int
    at_ms: int
    body: Mapping[str, object]


class SQLiteWatchStore:
    def __init__(self, path: Path | str) -> None:
        self._lock = threading.Lock()
        self._db = connect(path, _SCHEMA)

    def load(self, results_per_watch: int) -> list[tuple[JsonObject, list[JsonObject]]]:
        """Every stored watch (oldest first) with its newest `results_per_watch` results, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT id, body FROM watches ORDER BY created_at_ms, id").fetchall()
            out = []
            for watch_id, body in rows:
                results = self._db.execute(
                    "SELECT body FROM watch_results WHERE watch_id = ? ORDER BY seq DESC LIMIT ?",
                    (watch_id, results_per_watch),
                ).fetchall()
                out.append((_object(body), [_object(r[0]) for r in reversed(results)]))
        return out

    def put(self, watch: StoredWatch, result: StoredResult | None = None) -> None:
        """Insert or replace a watch, and add one result with it (one transaction)."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO watches (id, owner, state, created_at_ms, body) VALUES (?, ?, ?, ?, ?)",
                    (watch.id, watch.owner, watch.state, watch.created_at_ms, _dump(watch.body)),
                )
                if result is not None:
                    self._db.execute(
                        "INSERT OR REPLACE INTO watch_results (watch_id, seq, at_ms, body) VALUES (?, ?, ?, ?)",
                        (watch.id, result.seq, result.at_ms, _dump(result.body)),
                    )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def prune(self, watch_id: str, keep: int, oldest_at_ms: int) -> None:
        """Keep at most `keep` results of the watch, none older than `oldest_at_ms`."""
        with self._lock:
            self._db.execute(
                "DELETE FROM watch_results WHERE watch_id = ? AND (at_ms < ? OR seq <= "
                "(SELECT COALESCE(MAX(seq), 0) FROM watch_results WHERE watch_id = ?) - ?)",
                (watch_id, oldest_at_ms, watch_id, keep),
            )

    def add_delivery(self, msg_id: str, watch_id: str, payload: Mapping[str, object]) -> None:
        """A webhook delivery not yet done (kept until it lands or is given up)."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO watch_deliveries (msg_id, watch_id, body) VALUES (?, ?, ?)",
                (msg_id, watch_id, _dump(payload)),
            )

    def drop_delivery(self, msg_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM watch_deliveries WHERE msg_id = ?", (msg_id,))

    def pending_deliveries(self) -> list[tuple[str, str, JsonObject]]:
        """(msg_id, watch_id, payload) of every delivery not done, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT msg_id, watch_id, body FROM watch_deliveries ORDER BY rowid").fetchall()
        return [(m, w, _object(b)) for m, w, b in rows]

    def forget(self, watch_ids: Sequence[str]) -> None:
        if not watch_ids:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM watches WHERE id = ?", [(w,) for w in watch_ids])
            self._db.executemany("DELETE FROM watch_results WHERE watch_id = ?", [(w,) for w in watch_ids])
            self._db.executemany("DELETE FROM watch_deliveries WHERE watch_id = ?", [(w,) for w in watch_ids])
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()
