"""The SQLite stream store on a real file: round trips, batches, forgetting, WAL, a second process."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from livesight.core.records import StreamRecord
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
        source={"type": "file", "url": "clip.mp4"},
        state="ended",
        ended_at_ms=5_000,
        end_reason="deleted",
        index_hwm=1234,
        clock_hwm_ms=98_765,
        first_frame_at_ms=1_500,
        frozen={"id": "x", "last_frame_index": 17, "recent_fps": 0.0, "nested": [1, None]},
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
