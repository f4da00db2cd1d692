import sqlite3
import threading
from pathlib import Path

from livesight.core.clock import FakeClock
from livesight.store.keys import KEY_PREFIX, SQLiteKeyStore, digest


def test_keys_are_stored_hashed_never_in_plain_text(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    store = SQLiteKeyStore(db)
    key, plain = store.create("ci")
    store.close()
    assert plain.startswith(KEY_PREFIX) and len(plain) >= 40
    raw = (
        db.read_bytes() + (tmp_path / "k.db-wal").read_bytes() if (tmp_path / "k.db-wal").exists() else db.read_bytes()
    )
    assert plain.encode() not in raw
    rows = sqlite3.connect(db).execute("SELECT digest, prefix FROM api_keys").fetchall()
    assert rows == [(digest(plain), plain[:10])]
    assert key.prefix == plain[:10]


def test_verify_revoke_and_list(tmp_path: Path) -> None:
    store = SQLiteKeyStore(tmp_path / "k.db")
    a, plain_a = store.create("a")
    b, plain_b = store.create("b")
    assert store.verify(plain_a) == a
    assert store.verify(plain_a + "x") is None
    assert store.verify("") is None
    assert store.verify("x" * 10_000) is None
    revoked = store.revoke(a.id)
    assert revoked is not None and revoked.revoked
    assert store.verify(plain_a) is None
    assert store.verify(plain_b) == b
    assert store.revoke(plain_b) is not None  # revoking by the key itself works too
    assert store.revoke("key_unknown") is None
    assert [k.name for k in store.list()] == ["a", "b"]
    assert store.count() == 2


def test_revocation_is_seen_by_another_process_handle(tmp_path: Path) -> None:
    server_side = SQLiteKeyStore(tmp_path / "k.db")
    cli_side = SQLiteKeyStore(tmp_path / "k.db")
    key, plain = server_side.create()
    cli_side.revoke(key.id)
    assert server_side.verify(plain) is None


def test_concurrent_use_from_threads(tmp_path: Path) -> None:
    store = SQLiteKeyStore(tmp_path / "k.db")
    _, plain = store.create()
    results: list[bool] = []

    def work() -> None:
        for _ in range(50):
            results.append(store.verify(plain) is not None)
            store.create()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results) and len(results) == 200
    assert store.count() == 201


def test_key_times_come_from_the_injected_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    store = SQLiteKeyStore(tmp_path / "k.db", clock=clock)
    key, plain = store.create("a")
    assert key.created_at_ms == clock.now_ms()
    clock.advance(5_000)
    revoked = store.revoke(plain)
    store.close()
    assert revoked is not None and revoked.revoked_at_ms == clock.now_ms()
