"""API keys: `ovs-` + 43 url-safe random characters, stored only as SHA-256 digests.

Keys are 256-bit random secrets, so a fast hash is enough (no password stretching needed); the
lookup is by digest and the final comparison is constant-time. Plain keys exist only in the return
value of `create` and are never logged (`livesight demo` keeps its own key's plain text in
<data_dir>/demo.key, mode 0600, to reuse it; that key is flagged `demo`).
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeAlias

from livesight.core.clock import Clock, SystemClock
from livesight.store.sqlite import connect

KEY_PREFIX = "ovs-"


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    prefix: str  # first characters of the key, for humans to recognise it
    created_at_ms: int
    revoked_at_ms: int | None = None
    demo: bool = False  # made by `livesight demo` for itself; does not count as the user's first key

    @property
    def owner(self) -> str:
        """Streams belong to the key that created them."""
        return self.id

    @property
    def revoked(self) -> bool:
        return self.revoked_at_ms is not None


class KeyStore(Protocol):
    def create(self, name: str = "", *, demo: bool = False) -> tuple[ApiKey, str]:
        """A new key record and the plain key (shown once)."""
        ...

    def verify(self, presented: str) -> ApiKey | None:
        """The active key matching `presented`, or None (unknown or revoked)."""
        ...

    def list(self) -> list[ApiKey]: ...

    def revoke(self, key_id_or_key: str) -> ApiKey | None: ...

    def count(self, *, include_demo: bool = True) -> int: ...

    def close(self) -> None: ...


def digest(presented: str) -> str:
    return hashlib.sha256(presented.encode("utf-8", "surrogatepass")).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    prefix TEXT NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER,
    demo INTEGER NOT NULL DEFAULT 0
);
"""


# id, name, prefix, created_at_ms, revoked_at_ms, demo: the api_keys columns an ApiKey is read from
_KeyRow: TypeAlias = tuple[str, str, str, int, int | None, int]


def _key(row: _KeyRow) -> ApiKey:
    return ApiKey(row[0], row[1], row[2], row[3], row[4], bool(row[5]))


class SQLiteKeyStore:
    """KeyStore on one SQLite file (WAL mode, safe to share with `livesight keys` in another process)."""

    def __init__(self, path: Path | str, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._db = connect(path, _SCHEMA, synchronous_normal=False)
        self._migrate()

    def _migrate(self) -> None:
        """Databases made before the `demo` column: add it; the keys `livesight demo` made then were
        all named "demo" (one per run), so mark those."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(api_keys)")}
        if "demo" not in columns:
            self._db.execute("ALTER TABLE api_keys ADD COLUMN demo INTEGER NOT NULL DEFAULT 0")
            self._db.execute("UPDATE api_keys SET demo = 1 WHERE name = 'demo'")

    def create(self, name: str = "", *, demo: bool = False) -> tuple[ApiKey, str]:
        plain = generate_key()
        key = ApiKey(
            id="key_" + secrets.token_hex(6),
            name=name,
            prefix=plain[:10],
            created_at_ms=self._clock.now_ms(),
            demo=demo,
        )
        with self._lock:
            self._db.execute(
                "INSERT INTO api_keys (id, name, prefix, digest, created_at_ms, demo) VALUES (?, ?, ?, ?, ?, ?)",
                (key.id, key.name, key.prefix, digest(plain), key.created_at_ms, int(demo)),
            )
        return key, plain

    def verify(self, presented: str) -> ApiKey | None:
        if not presented or len(presented) > 512:
            return None
        wanted = digest(presented)
        with self._lock:
            row = self._db.execute(
                "SELECT id, name, prefix, created_at_ms, revoked_at_ms, demo, digest FROM api_keys WHERE digest = ?",
                (wanted,),
            ).fetchone()
        if row is None or not hmac.compare_digest(row[6], wanted) or row[4] is not None:
            return None
        return _key(row[:6])

    def list(self) -> list[ApiKey]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, name, prefix, created_at_ms, revoked_at_ms, demo FROM api_keys ORDER BY created_at_ms"
            ).fetchall()
        return [_key(row) for row in rows]

    def revoke(self, key_id_or_key: str) -> ApiKey | None:
        """Revoke by key id (`key_…`) or by the plain key itself."""
        now = self._clock.now_ms()
        with self._lock:
            self._db.execute(
                "UPDATE api_keys SET revoked_at_ms = ? WHERE (id = ? OR digest = ?) AND revoked_at_ms IS NULL",
                (now, key_id_or_key, digest(key_id_or_key)),
            )
            row = self._db.execute(
                "SELECT id, name, prefix, created_at_ms, revoked_at_ms, demo FROM api_keys WHERE id = ? OR digest = ?",
                (key_id_or_key, digest(key_id_or_key)),
            ).fetchone()
        return _key(row) if row else None

    def published(self) -> builtins.list[tuple[str, ApiKey]]:
        """Every key with its SHA-256 digest (what a cluster's key cache shares: store/redis_keys.py)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, name, prefix, created_at_ms, revoked_at_ms, demo, digest FROM api_keys"
            ).fetchall()
        return [(row[6], _key(row[:6])) for row in rows]

    def count(self, *, include_demo: bool = True) -> int:
        """Keys ever created (revoked ones too), optionally without those `livesight demo` made."""
        with self._lock:
            (n,) = self._db.execute(
                "SELECT COUNT(*) FROM api_keys WHERE demo = 0 OR ?", (int(include_demo),)
            ).fetchone()
        return int(n)

    def close(self) -> None:
        with self._lock:
            self._db.close()
