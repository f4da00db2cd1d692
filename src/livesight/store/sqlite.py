"""Opening the store's SQLite file, the same way for keys, streams and watches.

One connection per store object, shared by threads under the store's own lock (`check_same_thread`
off), autocommit (`isolation_level=None`: transactions are explicit `BEGIN`/`COMMIT`), a 5 s busy
timeout because several connections share the file, and WAL for a file on disk. `synchronous=NORMAL`
(streams, watches) keeps a commit across a SIGKILL of the process, not across a power loss.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect(path: Path | str, schema: str, *, synchronous_normal: bool = True) -> sqlite3.Connection:
    """A connection to `path` (":memory:" for a private in-memory database) with `schema` applied."""
    memory = str(path) == ":memory:"
    if not memory:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA busy_timeout = 5000")
    if not memory:
        db.execute("PRAGMA journal_mode = WAL")
    if synchronous_normal:
        db.execute("PRAGMA synchronous = NORMAL")
    db.executescript(schema)
    return db
