"""Stream records in SQLite (the `core.records.StreamStore` seam; a Redis store can replace it).

One row per stream, written through on create, keepalive and end, and checkpointed in batches for
the index/clock high-water marks (never per frame: see streams/durable.py). WAL mode with
`synchronous=NORMAL`: a commit is one write to the WAL, no fsync, so it survives a SIGKILL of the
process (the data is in the OS page cache) but the last commits may be lost on a power cut.

`source` and `frozen` are JSON objects. `frozen` (a tombstone's `StreamFacts`) uses the field names of
GET /streams/{id}; rows written before it was typed hold that whole response, and read the same.
A value of the wrong type reads as absent (the defaults of `BufferStats`), never as a wrong value.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from livesight.core.frame import BufferStats
from livesight.core.records import (
    END_REASONS,
    SOURCE_KINDS,
    EndReason,
    SourceSpec,
    StreamFacts,
    StreamRecord,
    StreamState,
)
from livesight.store.sqlite import connect

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


def _dump(value: dict[str, object] | None) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _object(value: str | None) -> dict[str, object] | None:
    loaded: object = None if value is None else json.loads(value)
    return {str(k): v for k, v in loaded.items()} if isinstance(loaded, dict) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _dump_source(source: SourceSpec | None) -> str | None:
    """The source without its credentials (a `livekit_room` token or API secret is never stored)."""
    if source is None:
        return None
    obj: dict[str, object] = {"type": source.type, "url": source.url}
    for name in ("room", "participant", "track_source"):
        value = getattr(source, name)
        if value is not None:
            obj[name] = value
    return _dump(obj)


def _load_source(value: str | None) -> SourceSpec | None:
    obj = _object(value)
    if obj is None:
        return None
    kind, url = obj.get("type"), obj.get("url")
    track = obj.get("track_source")
    for known in SOURCE_KINDS:
        if kind == known and isinstance(url, str):
            return SourceSpec(
                known,
                url,
                room=_str(obj.get("room")),
                participant=_str(obj.get("participant")),
                track_source="camera" if track == "camera" else "screen_share" if track == "screen_share" else None,
            )
    return None


def _dump_final(final: StreamFacts | None) -> str | None:
    if final is None:
        return None
    publisher: dict[str, object] = {
        "width": final.width,
        "height": final.height,
        "codec": final.codec,
        "publisher_connected": final.publisher_connected,
        "last_error": final.last_error,
        "last_error_at_ms": final.last_error_at_ms,
    }
    return _dump({**asdict(final.buffer), **publisher})


def _load_final(value: str | None) -> StreamFacts | None:
    obj = _object(value)
    if obj is None:
        return None
    fps = obj.get("recent_fps")
    buffer = BufferStats(
        stream_time_ms=_int(obj.get("stream_time_ms")) or 0,
        first_frame_at_ms=_int(obj.get("first_frame_at_ms")),
        last_frame_at_ms=_int(obj.get("last_frame_at_ms")),
        last_frame_index=_int(obj.get("last_frame_index")),
        first_available_frame_at_ms=_int(obj.get("first_available_frame_at_ms")),
        first_available_frame_index=_int(obj.get("first_available_frame_index")),
        recent_fps=float(fps) if isinstance(fps, int | float) and not isinstance(fps, bool) else 0.0,
        retained_frame_count=_int(obj.get("retained_frame_count")) or 0,
        evicted_frame_count=_int(obj.get("evicted_frame_count")) or 0,
        retained_bytes=_int(obj.get("retained_bytes")) or 0,
        gaps=_int(obj.get("gaps")) or 0,
    )
    return StreamFacts(
        buffer,
        width=_int(obj.get("width")),
        height=_int(obj.get("height")),
        codec=_str(obj.get("codec")),
        publisher_connected=obj.get("publisher_connected") is True,
        last_error=_str(obj.get("last_error")),
        last_error_at_ms=_int(obj.get("last_error_at_ms")),
    )


def _state(value: str) -> StreamState:
    return "active" if value == "active" else "ended"


def _end_reason(value: str | None) -> EndReason | None:
    for reason in END_REASONS:
        if value == reason:
            return reason
    return None


class SQLiteStreamStore:
    """StreamStore on one SQLite file (may be the API keys' file: its own table and connection)."""

    def __init__(self, path: Path | str) -> None:
        self._lock = threading.Lock()
        self._db = connect(path, _SCHEMA)

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
                state=_state(r[5]),
                source=_load_source(r[6]),
                ended_at_ms=r[7],
                end_reason=_end_reason(r[8]),
                index_hwm=r[9],
                clock_hwm_ms=r[10],
                first_frame_at_ms=r[11],
                final=_load_final(r[12]),
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
                _dump_source(r.source),
                r.ended_at_ms,
                r.end_reason,
                r.index_hwm,
                r.clock_hwm_ms,
                r.first_frame_at_ms,
                _dump_final(r.final),
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
