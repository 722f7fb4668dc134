"""SQLite migrations: a database made by an earlier version keeps its data when upgraded."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from storage import SQLiteStorage
from storage import sqlite as sqlite_module
from storage.sqlite import _migrations


def _at_version_1(path: Path) -> None:
    """A database as the first release left it: migration 001 only, with a user and a job."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                 "applied_at REAL NOT NULL)")
    version, sql = _migrations()[0]
    assert version == 1
    conn.executescript(sql)
    conn.execute("INSERT INTO schema_migrations VALUES (1, 0)")
    conn.execute("INSERT INTO users (key, balance, settings, last_topup, created_at) "
                 "VALUES ('telegram:1', 7, '{\"steps\": 3}', 'd', 1.0)")
    conn.execute("INSERT INTO ledger (user_key, amount, kind, note, created_at) "
                 "VALUES ('telegram:1', 7, 'initial', 'welcome grant', 1.0)")
    conn.commit()
    conn.close()


async def test_upgrade_keeps_users_and_ledger_and_allows_purchases(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _at_version_1(path)
    store = SQLiteStorage(path)
    await store.open()
    try:
        assert await store.balance("telegram:1") == 7
        assert await store.user_settings("telegram:1") == {"steps": 3}
        assert [e.kind for e in await store.ledger("telegram:1")] == ["initial"]
        assert await store.ensure_user("telegram:1", initial=20, daily_free=0, today="d") == 7
        assert await store.drift() == []
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
        assert versions == sorted(v for v, _ in _migrations())
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


async def test_a_migration_landing_later_with_a_lower_number_is_still_applied(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = _migrations()  # 002 (durable jobs) landed after 003 (payments)
    monkeypatch.setattr(sqlite_module, "_migrations",
                        lambda: [m for m in shipped if m[0] != 2])
    store = SQLiteStorage(tmp_path / "gap.db")
    await store.open()
    await store.close()
    monkeypatch.setattr(sqlite_module, "_migrations", lambda: shipped)
    await store.open()
    await store.close()
    conn = sqlite3.connect(tmp_path / "gap.db")
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
        assert {"owner", "lease_until", "attempts"} <= columns
        versions = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        assert {1, 2, 3} <= versions
    finally:
        conn.close()
