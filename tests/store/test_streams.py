"""The SQLite stream store on a real file: round trips, batches, forgetting, WAL, a second process."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from livesight.core.frame import BufferStats
from livesight.core.records import SourceSpec, StreamFacts, StreamRecord
from livesight.store.streams import SQLiteStreamStore


def record(i: int, **kw: object) -> StreamRecord:
    base = StreamRecord(
        id=f"00000000-0000-4000-8000-{i:012d}",
        owner="key_a",
        created_at_ms=1_000 + i,
        ttl_seconds=300,
        expires_at_ms=301_000 + i,
        state="active",
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_round_trip_every_field(tmp_path: Path) -> None:
    store = SQLiteStreamStore(tmp_path / "s.db")
    full = record(
        1,
        source=SourceSpec("file", "clip.mp4"),
        state="ended",
        ended_at_ms=5_000,
        end_reason="deleted",
        index_hwm=1234,
        clock_hwm_ms=98_765,
        first_frame_at_ms=1_500,
        final=StreamFacts(
            BufferStats(
                stream_time_ms=4_000,
                first_frame_at_ms=1_500,
                last_frame_at_ms=4_900,
                last_frame_index=17,
                first_available_frame_at_ms=4_000,
                first_available_frame_index=9,
                recent_fps=0.0,
                retained_frame_count=9,
                evicted_frame_count=9,
                retained_bytes=12_345,
            ),
            width=640,
            height=480,
            codec="VP8",
            last_error="publisher left",
            last_error_at_ms=4_950,
        ),
    )
    store.put([full, record(2)])
    store.close()
    again = SQLiteStreamStore(tmp_path / "s.db")
    assert again.load() == [full, record(2)]
    again.close()


def test_put_replaces_and_forget_deletes(tmp_path: Path) -> None:
    store = SQLiteStreamStore(tmp_path / "s.db")
    store.put([record(i) for i in range(5)])
    store.put([record(3, expires_at_ms=9, index_hwm=77)])
    store.forget([record(0).id, record(4).id, "not-there"])
    assert [r.id for r in store.load()] == [record(i).id for i in (1, 2, 3)]
    assert store.load()[2] == record(3, expires_at_ms=9, index_hwm=77)
    store.put([])
    store.forget([])
    store.close()


def test_wal_mode_and_committed_rows_survive_a_killed_process(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    code = (
        "import os, sys\n"
        "from livesight.core.records import StreamRecord\n"
        "from livesight.store.streams import SQLiteStreamStore\n"
        "s = SQLiteStreamStore(sys.argv[1])\n"
        "s.put([StreamRecord(id='a', owner='o', created_at_ms=1, ttl_seconds=1, expires_at_ms=2, state='active',"
        " index_hwm=42)])\n"
        "os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(db)], check=False, timeout=60)
    assert proc.returncode == -9
    store = SQLiteStreamStore(db)
    assert store.journal_mode() == "wal"
    (loaded,) = store.load()
    assert loaded.id == "a" and loaded.index_hwm == 42
    store.close()


def test_shares_the_keys_file_and_a_reader_in_another_connection(tmp_path: Path) -> None:
    from livesight.store.keys import SQLiteKeyStore

    db = tmp_path / "livesight.db"
    keys = SQLiteKeyStore(db)
    store = SQLiteStreamStore(db)
    keys.create("a")
    store.put([record(1)])
    other = sqlite3.connect(db)
    assert other.execute("SELECT COUNT(*) FROM streams").fetchone() == (1,)
    assert other.execute("SELECT COUNT(*) FROM api_keys").fetchone() == (1,)
    other.close()
    keys.close()
    store.close()


def test_rows_written_before_the_record_was_typed_read_as_the_same_values(tmp_path: Path) -> None:
    """Rows of an older livesight: `frozen` holds the whole GET /streams/{id} answer; a row's JSON of
    the wrong shape reads as absent values, never as wrong ones."""
    db = tmp_path / "s.db"
    SQLiteStreamStore(db).close()
    old_frozen = (
        '{"id":"x","state":"ended","stream_time_ms":3300,"first_frame_at_ms":1500,"last_frame_at_ms":4800,'
        '"last_frame_index":99,"first_available_frame_at_ms":2000,"first_available_frame_index":40,'
        '"created_at_ms":1000,"recent_fps":0.0,"retained_frame_count":60,"evicted_frame_count":40,'
        '"retained_bytes":6000,"expires_at_ms":null,"ttl_seconds":300,"ended_at_ms":5000,'
        '"end_reason":"source_failed","audio":false,"width":320,"height":240,"codec":"H264",'
        '"publisher_connected":false,"last_error":"gone","last_error_at_ms":4900,'
        '"source":{"type":"rtsp","url":"rtsp://cam/1"}}'
    )
    rows = [
        ("a", "ended", '{"type":"rtsp","url":"rtsp://cam/1"}', "source_failed", old_frozen),
        ("b", "ended", '{"type":"ftp","url":"x"}', "vanished", '["not", "an", "object"]'),
        ("c", "active", None, None, '{"last_frame_index":"7","retained_bytes":true,"codec":5}'),
    ]
    raw = sqlite3.connect(db)
    raw.executemany(
        "INSERT INTO streams (id, owner, created_at_ms, ttl_seconds, expires_at_ms, state, source, end_reason,"
        " frozen) VALUES (?, 'o', 1000, 300, 301000, ?, ?, ?, ?)",
        rows,
    )
    raw.commit()
    raw.close()
    store = SQLiteStreamStore(db)
    a, b, c = store.load()
    store.close()
    assert a.source == SourceSpec("rtsp", "rtsp://cam/1") and a.end_reason == "source_failed"
    assert a.final == StreamFacts(
        BufferStats(3300, 1500, 4800, 99, 2000, 40, 0.0, 60, 40, 6000),
        width=320,
        height=240,
        codec="H264",
        last_error="gone",
        last_error_at_ms=4900,
    )
    assert (b.source, b.end_reason, b.final) == (None, None, None)
    assert c.final == StreamFacts(BufferStats())
