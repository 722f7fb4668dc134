"""SQLite storage (plain ``sqlite3`` on one dedicated thread, WAL): the embedded default.

Each write is one transaction run as one function on the connection's own thread, so a
reservation and its ledger row commit together or not at all, and a process killed at any
moment leaves either both or neither. The thread is a one-worker executor rather than
aiosqlite: aiosqlite has no public way to run a whole function (a transaction) on its thread,
and everything here is such a function.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from storage.base import (
    REFUNDED_STATUSES,
    Drift,
    Grants,
    LedgerEntry,
    PurchaseOutcome,
    PurchaseRecord,
    RevenueDay,
    Usage,
)
from storage.errors import DatabaseDown
from storage.sqlite_errors import unavailable
from storage.sqlite_jobs import SQLiteJobQueue, topped_up

T = TypeVar("T")
log = logging.getLogger(__name__)
BACKGROUND_BUSY_MS = 1000
# Jobs that gave the user nothing do not count against cooldowns and daily limits.
NOT_COUNTED = ",".join(f"'{status}'" for status in REFUNDED_STATUSES)


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("storage") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(found)


class SQLiteStorage(SQLiteJobQueue):
    """``Storage`` on one SQLite file."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = str(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._db: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None  # the only thread that touches _db
        # A second, read-only connection for point reads on the event loop (see _point_read).
        self._reader: sqlite3.Connection | None = None
        self._reader_thread = 0
        self._last_failure = ""
        self._running = False

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect, migrate and tidy; any failure closes the connection and names the cause.

        An unclosed connection's thread would keep the process alive after the error.
        """
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = await self._on_thread(self._connect)
        except (sqlite3.Error, OSError) as exc:
            await self.close()
            raise unavailable(exc, self.path) from exc
        try:
            await self._tx(self._migrate)
            # Platforms re-deliver within minutes; a week of event ids is plenty.
            await self._tx(lambda conn: conn.execute(
                "DELETE FROM processed_events WHERE created_at < ?", (time.time() - 7 * 86400,)))
            await self._on_thread(lambda: self._pragma(f"busy_timeout={int(self.busy_timeout_ms)}"))
            self._open_reader()
        except BaseException as exc:
            await self.close()
            if isinstance(exc, sqlite3.Error):
                raise unavailable(exc, self.path) from exc
            raise
        self._running = True

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        conn.row_factory = sqlite3.Row
        try:
            # A lock held by another program fails the start in 1 s, not the full timeout.
            conn.execute(f"PRAGMA busy_timeout={min(1000, int(self.busy_timeout_ms))}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            # Deleted rows are zeroed in the pages a delete writes anyway, not in the freed pages
            # of a photo's blob, which the next photo reuses. Debian builds SQLite with secure
            # delete on: zeroing those pages made a job with a 187 KB photo and a 60 KB result
            # write 114 WAL frames instead of 69.
            conn.execute("PRAGMA secure_delete=FAST")
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_reader(self) -> None:
        """The loop's read-only connection; none for ``:memory:`` (a second connection to it
        would be another, empty database)."""
        if self.path == ":memory:":
            return
        reader = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        reader.row_factory = sqlite3.Row
        try:
            reader.execute("PRAGMA busy_timeout=0")  # never wait on the loop: fall back instead
            reader.execute("PRAGMA query_only=ON")
        except BaseException:
            reader.close()
            raise
        self._reader, self._reader_thread = reader, threading.get_ident()

    def _pragma(self, setting: str) -> None:
        if self._db is not None:
            self._db.execute(f"PRAGMA {setting}")

    async def _on_thread(self, fn: Callable[[], T]) -> T:
        if self._thread is None:
            raise RuntimeError("storage is not open")
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    async def close(self) -> None:
        """Close the connection on its thread, then end the thread (nothing keeps the process
        alive after an error)."""
        self._running = False
        thread, db = self._thread, self._db
        self._thread = self._db = None
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()
        if thread is None:
            return
        if db is not None:
            await asyncio.get_running_loop().run_in_executor(thread, db.close)
        thread.shutdown(wait=False)

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                     "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for version, sql in _migrations():
            if version in done:
                continue
            for statement in sql.split(";\n"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))

    async def _tx(self, fn: Callable[[sqlite3.Connection], T], *,
                  background: bool = False) -> T:
        """Run ``fn`` as one IMMEDIATE transaction on the connection's thread.

        ``background`` work (claims, heartbeats, the outbox) waits at most
        ``BACKGROUND_BUSY_MS`` for another writer: all calls share this one thread, and a loop
        waiting out the full busy timeout on a locked file would hold users' requests back.
        """
        db = self._db
        if db is None:
            raise RuntimeError("storage is not open")
        busy = min(BACKGROUND_BUSY_MS, self.busy_timeout_ms) if background else None

        def run() -> T:
            conn = db
            if busy is not None:
                conn.execute(f"PRAGMA busy_timeout={busy}")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(conn)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                if busy is not None:
                    conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            return result

        try:
            result = await self._on_thread(run)
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
        return result

    def _unavailable(self, exc: sqlite3.Error) -> DatabaseDown:
        """The error for a failed statement, logged once per cause while the bot runs."""
        error = unavailable(exc, self.path)
        # While starting, the caller reports it (the CLI prints one line); no log line twice.
        if self._running and error.detail != self._last_failure:
            self._last_failure = error.detail
            log.error("%s", error.detail)
        return error

    async def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        db = self._db
        if db is None:
            raise RuntimeError("storage is not open")
        try:
            return await self._on_thread(lambda: db.execute(sql, args).fetchall())
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc

    async def _point_read(self, sql: str, args: tuple[Any, ...]) -> list[sqlite3.Row]:
        """A read of a few rows by key, made on the event loop where it can be.

        A job's submission reads the user's settings; on the connection's thread that read
        costs two thread switches and a loop wake-up, several times what the read itself takes
        (a primary-key lookup in pages the cache holds: tens of microseconds). In WAL mode a
        reader never waits for a writer, and this connection's busy timeout is 0, so the loop
        never sleeps on a lock: anything but an answer at once (a lock during recovery, an
        error, another thread) goes to the connection's thread, which reports errors as every
        other call does. Only key lookups come here; scans stay on the thread.
        """
        reader = self._reader
        if reader is not None and threading.get_ident() == self._reader_thread:
            try:
                return reader.execute(sql, args).fetchall()
            except sqlite3.Error:
                pass
        return await self._read(sql, args)

    # -- users and credits ---------------------------------------------------------------------
    async def ensure_user(self, user_key: str, *, initial: int, daily_free: int,
                          today: str) -> int:
        grants = Grants(initial, daily_free, today)
        return await self._tx(lambda conn: topped_up(conn, user_key, grants))

    async def balance(self, user_key: str) -> int | None:
        rows = await self._read("SELECT balance FROM users WHERE key = ?", (user_key,))
        return int(rows[0][0]) if rows else None

    async def ledger(self, user_key: str, limit: int = 10) -> list[LedgerEntry]:
        rows = await self._read(
            "SELECT id, user_key, amount, kind, job_id, note, created_at FROM ledger "
            "WHERE user_key = ? ORDER BY id DESC LIMIT ?", (user_key, limit))
        return [LedgerEntry(*tuple(row)) for row in rows]

    async def grant(self, user_key: str, amount: int, note: str = "") -> int:
        def fn(conn: sqlite3.Connection) -> int:
            now = time.time()
            conn.execute("INSERT OR IGNORE INTO users (key, balance, created_at) VALUES (?, 0, ?)",
                         (user_key, now))
            row = conn.execute("SELECT balance FROM users WHERE key = ?", (user_key,)).fetchone()
            # A negative grant takes at most what is there (nothing from a balance below zero).
            change = max(amount, -max(0, int(row[0])))
            conn.execute("UPDATE users SET balance = balance + ? WHERE key = ?",
                         (change, user_key))
            conn.execute("INSERT INTO ledger (user_key, amount, kind, note, created_at) "
                         "VALUES (?, ?, 'grant', ?, ?)", (user_key, change, note, now))
            return int(row[0]) + change

        return await self._tx(fn)

    async def usage(self, user_key: str, chat_key: str, since: float) -> Usage:
        rows = await self._read(
            "SELECT COUNT(*), MAX(created_at) FROM jobs WHERE user_key = ? AND chat_key = ? "
            f"AND created_at >= ? AND status NOT IN ({NOT_COUNTED})",
            (user_key, chat_key, since))
        last = await self._read("SELECT MAX(created_at) FROM jobs WHERE user_key = ? AND "
                                f"chat_key = ? AND status NOT IN ({NOT_COUNTED})",
                                (user_key, chat_key))
        return Usage(count=int(rows[0][0]), last_at=last[0][0])

    # -- settings --------------------------------------------------------------------------------
    async def user_settings(self, user_key: str) -> dict[str, Any]:
        rows = await self._point_read("SELECT settings FROM users WHERE key = ?", (user_key,))
        return dict(json.loads(rows[0][0])) if rows else {}

    async def set_user_settings(self, user_key: str, settings: dict[str, Any]) -> None:
        def fn(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR IGNORE INTO users (key, balance, created_at) VALUES (?, 0, ?)",
                         (user_key, time.time()))
            conn.execute("UPDATE users SET settings = ? WHERE key = ?",
                         (json.dumps(settings), user_key))

        await self._tx(fn)

    async def chat_settings(self, chat_key: str) -> dict[str, Any]:
        rows = await self._point_read("SELECT settings FROM chats WHERE key = ?", (chat_key,))
        return dict(json.loads(rows[0][0])) if rows else {}

    async def set_chat_settings(self, chat_key: str, settings: dict[str, Any]) -> None:
        def fn(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO chats (key, settings, updated_at) VALUES (?, ?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET settings = excluded.settings, "
                         "updated_at = excluded.updated_at",
                         (chat_key, json.dumps(settings), time.time()))

        await self._tx(fn)

    # -- idempotency, privacy, audit -------------------------------------------------------------
    async def mark_event(self, platform: str, event_id: str) -> bool:
        def fn(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("INSERT OR IGNORE INTO processed_events VALUES (?, ?, ?)",
                               (platform, event_id, time.time()))
            return bool(cur.rowcount)

        return await self._tx(fn)

    async def forget_user(self, user_key: str) -> int:
        """Erase a user's prompts and personal settings; the ledger stays for the audit trail."""

        def fn(conn: sqlite3.Connection) -> int:
            conn.execute("UPDATE users SET settings = '{}' WHERE key = ?", (user_key,))
            return int(conn.execute(
                "UPDATE jobs SET params = '{}', origin = '{}', error = NULL WHERE user_key = ? "
                "AND status NOT IN ('queued', 'running', 'generated')", (user_key,)).rowcount)

        return await self._tx(fn)

    async def stats(self) -> dict[str, Any]:
        users = await self._read("SELECT COUNT(*), COALESCE(SUM(balance), 0) FROM users")
        jobs = await self._read("SELECT status, COUNT(*) FROM jobs GROUP BY status")
        spent = await self._read("SELECT COALESCE(SUM(price), 0) FROM jobs "
                                 "WHERE charge = 'committed'")
        day = await self._read("SELECT COUNT(*) FROM jobs WHERE created_at >= ?",
                               (time.time() - 86400,))
        return {
            "users": int(users[0][0]), "credits_outstanding": int(users[0][1]),
            "jobs": {row[0]: int(row[1]) for row in jobs}, "credits_spent": int(spent[0][0]),
            "jobs_last_24h": int(day[0][0]),
        }

    async def drift(self) -> list[Drift]:
        rows = await self._read(
            "SELECT u.key, u.balance, COALESCE(SUM(l.amount), 0) FROM users u "
            "LEFT JOIN ledger l ON l.user_key = u.key GROUP BY u.key "
            "HAVING u.balance != COALESCE(SUM(l.amount), 0)")
        return [Drift(row[0], int(row[1]), int(row[2])) for row in rows]

    # -- purchases ---------------------------------------------------------------------------------
    async def record_purchase(self, purchase: PurchaseRecord) -> PurchaseOutcome:
        """Grant a paid pack once per charge id: the purchase, its ledger row and the balance."""

        def fn(conn: sqlite3.Connection) -> PurchaseOutcome:
            now = time.time()
            conn.execute("INSERT OR IGNORE INTO users (key, balance, created_at) VALUES (?, 0, ?)",
                         (purchase.user_key, now))
            inserted = conn.execute(
                "INSERT OR IGNORE INTO purchases (charge_id, platform, user_key, pack_id, credits,"
                " currency, price, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (purchase.charge_id, purchase.platform, purchase.user_key, purchase.pack_id,
                 purchase.credits, purchase.currency, purchase.price, now)).rowcount
            if inserted:
                conn.execute("UPDATE users SET balance = balance + ? WHERE key = ?",
                             (purchase.credits, purchase.user_key))
                conn.execute("INSERT INTO ledger (user_key, amount, kind, note, created_at, "
                             "charge_id) VALUES (?, ?, 'purchase', ?, ?, ?)",
                             (purchase.user_key, purchase.credits, f"pack {purchase.pack_id}",
                              now, purchase.charge_id))
            stored = self._purchase(conn, purchase.charge_id)
            assert stored is not None  # inserted now or before
            row = conn.execute("SELECT balance FROM users WHERE key = ?",
                               (stored.user_key,)).fetchone()
            return PurchaseOutcome(bool(inserted), int(row[0]), stored)

        return await self._tx(fn)

    @staticmethod
    def _purchase(conn: sqlite3.Connection, charge_id: str) -> PurchaseRecord | None:
        row = conn.execute("SELECT charge_id, platform, user_key, pack_id, credits, currency, "
                           "price, created_at, refunded_at FROM purchases WHERE charge_id = ?",
                           (charge_id,)).fetchone()
        return PurchaseRecord(*tuple(row)) if row else None

    async def get_purchase(self, charge_id: str) -> PurchaseRecord | None:
        rows = await self._read("SELECT charge_id, platform, user_key, pack_id, credits, "
                                "currency, price, created_at, refunded_at FROM purchases "
                                "WHERE charge_id = ?", (charge_id,))
        return PurchaseRecord(*tuple(rows[0])) if rows else None

    async def refund_purchase(self, charge_id: str, note: str = "") -> int | None:
        """Take a refunded pack's credits back once; the balance left, or None if not done.

        The whole pack is taken even from a smaller balance: the caller decides beforehand
        whether a pack partly spent may be refunded (the balance then ends below zero).
        """

        def fn(conn: sqlite3.Connection) -> int | None:
            now = time.time()
            updated = conn.execute("UPDATE purchases SET refunded_at = ? WHERE charge_id = ? "
                                   "AND refunded_at IS NULL", (now, charge_id)).rowcount
            if not updated:
                return None
            row = conn.execute("SELECT user_key, credits, pack_id FROM purchases "
                               "WHERE charge_id = ?", (charge_id,)).fetchone()
            conn.execute("UPDATE users SET balance = balance - ? WHERE key = ?",
                         (row[1], row[0]))
            conn.execute("INSERT INTO ledger (user_key, amount, kind, note, created_at, charge_id)"
                         " VALUES (?, ?, 'refund', ?, ?, ?)",
                         (row[0], -row[1], note or f"pack {row[2]} refunded", now, charge_id))
            balance = conn.execute("SELECT balance FROM users WHERE key = ?",
                                   (row[0],)).fetchone()
            return int(balance[0])

        return await self._tx(fn)

    async def revenue(self, since: float) -> list[RevenueDay]:
        rows = await self._read(
            "SELECT date(created_at, 'unixepoch') AS day, platform, currency, COUNT(*), "
            "SUM(credits), SUM(CASE WHEN refunded_at IS NULL THEN price ELSE 0 END), "
            "SUM(refunded_at IS NOT NULL) FROM purchases "
            "WHERE created_at >= ? GROUP BY day, platform, currency "
            "ORDER BY day DESC, platform, currency", (since,))
        return [RevenueDay(row[0], row[1], row[2], int(row[3]), int(row[4]), int(row[5]),
                           int(row[6])) for row in rows]
