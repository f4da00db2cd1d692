"""Stream records in SQLite (the `core.records.StreamStore` seam; a Redis store can replace it).

One row per stream, written through on create, keepalive and end, and checkpointed in batches for
the index/clock high-water marks (never per frame: see buffer/registry.py). WAL mode with
`synchronous=NORMAL`: a commit is one write to the WAL, no fsync, so it survives a SIGKILL of the
process (the data is in the OS page cache) but the last commits may be lost on a power cut.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from livesight.core.records import StreamRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS streams (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    ttl_seconds INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    source TEXT,
    ended_at_ms INTEGER,
    end_reason TEXT,
    index_hwm INTEGER NOT NULL DEFAULT 0,
    clock_hwm_ms INTEGER NOT NULL DEFAULT 0,
    first_frame_at_ms INTEGER,
    frozen TEXT
);
CREATE INDEX IF NOT EXISTS streams_owner ON streams (owner);
"""
_SELECT = """
SELECT id, owner, created_at_ms, ttl_seconds, expires_at_ms, state, source, ended_at_ms, end_reason,
       index_hwm, clock_hwm_ms, first_frame_at_ms, frozen
FROM streams ORDER BY created_at_ms, id
"""
_UPSERT = """
INSERT OR REPLACE INTO streams (id, owner, created_at_ms, ttl_seconds, expires_at_ms, state, source, ended_at_ms,
                                end_reason, index_hwm, clock_hwm_ms, first_frame_at_ms, frozen)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def _dump(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _load(value: str | None) -> dict[str, Any] | None:
    return None if value is None else dict(json.loads(value))


class SQLiteStreamStore:
    """StreamStore on one SQLite file (may be the API keys' file: its own table and connection)."""

    def __init__(self, path: Path | str) -> None:
        memory = str(path) == ":memory:"
        if not memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout = 5000")
        if not memory:
            self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.executescript(_SCHEMA)

    def load(self) -> list[StreamRecord]:
        with self._lock:
            rows = self._db.execute(_SELECT).fetchall()
        return [
            StreamRecord(
                id=r[0],
                owner=r[1],
                created_at_ms=r[2],
                ttl_seconds=r[3],
                expires_at_ms=r[4],
                state=r[5],
                source=_load(r[6]),
                ended_at_ms=r[7],
                end_reason=r[8],
                index_hwm=r[9],
                clock_hwm_ms=r[10],
                first_frame_at_ms=r[11],
                frozen=_load(r[12]),
            )
            for r in rows
        ]

    def put(self, records: Sequence[StreamRecord]) -> None:
        if not records:
            return
        rows = [
            (
                r.id,
                r.owner,
                r.created_at_ms,
                r.ttl_seconds,
                r.expires_at_ms,
                r.state,
                _dump(r.source),
                r.ended_at_ms,
                r.end_reason,
                r.index_hwm,
                r.clock_hwm_ms,
                r.first_frame_at_ms,
                _dump(r.frozen),
            )
            for r in records
        ]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(_UPSERT, rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def forget(self, stream_ids: Sequence[str]) -> None:
        if not stream_ids:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM streams WHERE id = ?", [(sid,) for sid in stream_ids])
            self._db.execute("COMMIT")

    def journal_mode(self) -> str:
        with self._lock:
            (mode,) = self._db.execute("PRAGMA journal_mode").fetchone()
        return str(mode)

    def close(self) -> None:
        with self._lock:
            self._db.close()
