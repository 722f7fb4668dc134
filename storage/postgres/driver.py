"""PostgreSQL storage (asyncpg, a connection pool): for several bot processes on one database.

Every write is one transaction on one pooled connection. Rows that a write reads and then
changes are locked first (``FOR UPDATE``, or an ``UPDATE ... WHERE`` guard that PostgreSQL
re-checks after waiting for a concurrent writer), so the default READ COMMITTED isolation gives
the same outcomes as SQLite's one-writer-at-a-time: no overdraft, one refund per job.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from storage.base import (
    ACTIVE_STATUSES,
    REFUNDED_STATUSES,
    Drift,
    Grants,
    LedgerEntry,
    PurchaseOutcome,
    PurchaseRecord,
    RevenueDay,
    Usage,
)
from storage.postgres.errors import OPEN_FAILURES, OUTAGES, unavailable
from storage.postgres.jobs import PostgresJobQueue, topped_up
from storage.scripts import migration_scripts

log = logging.getLogger(__name__)
# Any constant works; it only has to be the same in every process that migrates this database.
MIGRATION_LOCK = 0x1316_2B07
Connection: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"
Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"


def _count(status: str) -> int:
    """The row count of a command tag such as ``UPDATE 3``."""
    return int(status.rsplit(" ", 1)[-1])


def _one(row: asyncpg.Record | None) -> asyncpg.Record:
    """A row the query always returns (an aggregate, or a row this transaction holds)."""
    if row is None:
        raise RuntimeError("the query returned no row")
    return row


async def _init_connection(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    # jsonb columns in and out as Python objects, like the SQLite backend's JSON text.
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads,
                              schema="pg_catalog")


class PostgresStorage(PostgresJobQueue):
    """``Storage`` on a PostgreSQL database, shared safely by any number of processes."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10,
                 connect_timeout: float = 10.0) -> None:
        self.url = url
        self.min_size = min_size
        self.max_size = max_size
        self.connect_timeout = connect_timeout
        self._pool: Pool | None = None
        self._running = False  # past open(): failures are logged here, once per cause
        self._last_failure: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.url, min_size=self.min_size, max_size=self.max_size,
                timeout=self.connect_timeout, init=_init_connection)
        except OPEN_FAILURES as exc:
            # from None: the driver's own exception may quote the DSN it was given.
            raise unavailable(exc, self.url) from None
        await self._migrate()
        self._running = True
        # Platforms re-deliver within minutes; a week of event ids is plenty.
        async with self._tx() as conn:
            await conn.execute("DELETE FROM processed_events WHERE created_at < $1",
                               time.time() - 7 * 86400)

    async def close(self) -> None:
        self._running = False
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _migrate(self) -> None:
        async with self._tx() as conn:
            # Processes starting together on a new database take turns.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version integer "
                               "PRIMARY KEY, applied_at double precision NOT NULL)")
            done = {row[0] for row in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, sql in migration_scripts("storage.postgres"):
                if version not in done:
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2)",
                                       version, time.time())

    @property
    def pool(self) -> Pool:
        if self._pool is None:
            raise RuntimeError("storage is not open")
        return self._pool

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[Connection]:
        """A pooled connection; a database outage becomes ``DatabaseDown``."""
        try:
            async with self.pool.acquire() as conn:
                yield conn
        except OUTAGES as exc:
            error = unavailable(exc, self.url)
            # While starting, the caller reports it (the CLI prints one line); no log line twice.
            if self._running and error.detail != self._last_failure:
                self._last_failure = error.detail
                log.error("%s", error.detail)
            raise error from exc

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[Connection]:
        """One transaction on a pooled connection: committed on exit, rolled back on error."""
        async with self._conn() as conn, conn.transaction():
            yield conn

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self._conn() as conn:
            return await conn.fetch(sql, *args)

    async def _fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        async with self._conn() as conn:
            return await conn.fetchrow(sql, *args)

    async def _fetchval(self, sql: str, *args: Any) -> Any:
        async with self._conn() as conn:
            return await conn.fetchval(sql, *args)

    async def _execute(self, sql: str, *args: Any) -> str:
        async with self._conn() as conn:
            return await conn.execute(sql, *args)

    # -- users and credits ---------------------------------------------------------------------
    async def ensure_user(self, user_key: str, *, initial: int, daily_free: int,
                          today: str) -> int:
        async with self._tx() as conn:
            return await topped_up(conn, user_key, Grants(initial, daily_free, today))

    @staticmethod
    async def _ledger_row(conn: Connection, user_key: str, amount: int, kind: str,
                          job_id: str | None, note: str, now: float) -> None:
        await conn.execute("INSERT INTO ledger (user_key, amount, kind, job_id, note, created_at) "
                           "VALUES ($1, $2, $3, $4, $5, $6)",
                           user_key, amount, kind, job_id, note, now)

    async def balance(self, user_key: str) -> int | None:
        value = await self._fetchval("SELECT balance FROM users WHERE key = $1", user_key)
        return None if value is None else int(value)

    async def ledger(self, user_key: str, limit: int = 10) -> list[LedgerEntry]:
        rows = await self._fetch(
            "SELECT id, user_key, amount, kind, job_id, note, created_at FROM ledger "
            "WHERE user_key = $1 ORDER BY id DESC LIMIT $2", user_key, limit)
        return [LedgerEntry(*tuple(row)) for row in rows]

    async def grant(self, user_key: str, amount: int, note: str = "") -> int:
        async with self._tx() as conn:
            now = time.time()
            await conn.execute("INSERT INTO users (key, balance, created_at) VALUES ($1, 0, $2) "
                               "ON CONFLICT (key) DO NOTHING", user_key, now)
            balance = int(await conn.fetchval(
                "SELECT balance FROM users WHERE key = $1 FOR UPDATE", user_key))
            # A negative grant takes at most what is there (nothing from a balance below zero).
            change = max(amount, -max(0, balance))
            await conn.execute("UPDATE users SET balance = balance + $1 WHERE key = $2",
                               change, user_key)
            await self._ledger_row(conn, user_key, change, "grant", None, note, now)
            return balance + change

    async def usage(self, user_key: str, chat_key: str, since: float) -> Usage:
        row = _one(await self._fetchrow(
            "SELECT COUNT(*) FILTER (WHERE created_at >= $3) AS count, MAX(created_at) AS last "
            "FROM jobs WHERE user_key = $1 AND chat_key = $2 "
            "AND status <> ALL($4)", user_key, chat_key, since, list(REFUNDED_STATUSES)))
        return Usage(count=int(row["count"]), last_at=row["last"])

    # -- settings --------------------------------------------------------------------------------
    async def user_settings(self, user_key: str) -> dict[str, Any]:
        value = await self._fetchval("SELECT settings FROM users WHERE key = $1", user_key)
        return dict(value) if value else {}

    async def set_user_settings(self, user_key: str, settings: dict[str, Any]) -> None:
        await self._execute(
            "INSERT INTO users (key, balance, settings, created_at) VALUES ($1, 0, $2, $3) "
            "ON CONFLICT (key) DO UPDATE SET settings = excluded.settings",
            user_key, settings, time.time())

    async def chat_settings(self, chat_key: str) -> dict[str, Any]:
        value = await self._fetchval("SELECT settings FROM chats WHERE key = $1", chat_key)
        return dict(value) if value else {}

    async def set_chat_settings(self, chat_key: str, settings: dict[str, Any]) -> None:
        await self._execute(
            "INSERT INTO chats (key, settings, updated_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (key) DO UPDATE SET settings = excluded.settings, "
            "updated_at = excluded.updated_at", chat_key, settings, time.time())

    # -- idempotency, privacy, audit -------------------------------------------------------------
    async def mark_event(self, platform: str, event_id: str) -> bool:
        status = await self._execute(
            "INSERT INTO processed_events VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            platform, event_id, time.time())
        return _count(status) == 1

    async def forget_user(self, user_key: str) -> int:
        """Erase a user's prompts and personal settings; the ledger stays for the audit trail."""
        async with self._tx() as conn:
            await conn.execute("UPDATE users SET settings = '{}' WHERE key = $1", user_key)
            return _count(await conn.execute(
                "UPDATE jobs SET params = '{}', origin = '{}', error = NULL WHERE user_key = $1 "
                "AND status <> ALL($2::text[])", user_key, ACTIVE_STATUSES))

    async def stats(self) -> dict[str, Any]:
        async with self._conn() as conn:
            users = _one(await conn.fetchrow("SELECT COUNT(*), COALESCE(SUM(balance), 0) "
                                             "FROM users"))
            jobs = await conn.fetch("SELECT status, COUNT(*) FROM jobs GROUP BY status")
            spent = await conn.fetchval("SELECT COALESCE(SUM(price), 0) FROM jobs "
                                        "WHERE charge = 'committed'")
            day = await conn.fetchval("SELECT COUNT(*) FROM jobs WHERE created_at >= $1",
                                      time.time() - 86400)
        return {
            "users": int(users[0]), "credits_outstanding": int(users[1]),
            "jobs": {row[0]: int(row[1]) for row in jobs}, "credits_spent": int(spent),
            "jobs_last_24h": int(day),
        }

    async def drift(self) -> list[Drift]:
        rows = await self._fetch(
            "SELECT u.key, u.balance, COALESCE(SUM(l.amount), 0) AS total FROM users u "
            "LEFT JOIN ledger l ON l.user_key = u.key GROUP BY u.key "
            "HAVING u.balance <> COALESCE(SUM(l.amount), 0)")
        return [Drift(row[0], int(row[1]), int(row[2])) for row in rows]

    # -- purchases ---------------------------------------------------------------------------------
    async def record_purchase(self, purchase: PurchaseRecord) -> PurchaseOutcome:
        """Grant a paid pack once per charge id: the purchase, its ledger row and the balance."""
        async with self._tx() as conn:
            now = time.time()
            await conn.execute("INSERT INTO users (key, balance, created_at) VALUES ($1, 0, $2) "
                               "ON CONFLICT (key) DO NOTHING", purchase.user_key, now)
            # A concurrent delivery of the same charge waits here, then inserts nothing.
            inserted = _count(await conn.execute(
                "INSERT INTO purchases (charge_id, platform, user_key, pack_id, credits, "
                "currency, price, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
                "ON CONFLICT (charge_id) DO NOTHING", purchase.charge_id, purchase.platform,
                purchase.user_key, purchase.pack_id, purchase.credits, purchase.currency,
                purchase.price, now))
            if inserted:
                await conn.execute("UPDATE users SET balance = balance + $1 WHERE key = $2",
                                   purchase.credits, purchase.user_key)
                await conn.execute(
                    "INSERT INTO ledger (user_key, amount, kind, note, created_at, charge_id) "
                    "VALUES ($1, $2, 'purchase', $3, $4, $5)", purchase.user_key,
                    purchase.credits, f"pack {purchase.pack_id}", now, purchase.charge_id)
            stored = _purchase(_one(await conn.fetchrow(
                f"SELECT {PURCHASE_COLUMNS} FROM purchases WHERE charge_id = $1",
                purchase.charge_id)))
            balance = await conn.fetchval("SELECT balance FROM users WHERE key = $1",
                                          stored.user_key)
            return PurchaseOutcome(bool(inserted), int(balance), stored)

    async def get_purchase(self, charge_id: str) -> PurchaseRecord | None:
        row = await self._fetchrow(
            f"SELECT {PURCHASE_COLUMNS} FROM purchases WHERE charge_id = $1",
            charge_id)
        return None if row is None else _purchase(row)

    async def refund_purchase(self, charge_id: str, note: str = "") -> int | None:
        """Take a refunded pack's credits back once; the balance left, or None if not done."""
        async with self._tx() as conn:
            now = time.time()
            row = await conn.fetchrow(
                "UPDATE purchases SET refunded_at = $1 WHERE charge_id = $2 AND refunded_at IS "
                "NULL RETURNING user_key, credits, pack_id", now, charge_id)
            if row is None:
                return None
            balance = await conn.fetchval(
                "UPDATE users SET balance = balance - $1 WHERE key = $2 RETURNING balance",
                row["credits"], row["user_key"])
            await conn.execute(
                "INSERT INTO ledger (user_key, amount, kind, note, created_at, charge_id) "
                "VALUES ($1, $2, 'refund', $3, $4, $5)", row["user_key"], -row["credits"],
                note or f"pack {row['pack_id']} refunded", now, charge_id)
            return int(balance)

    async def revenue(self, since: float) -> list[RevenueDay]:
        rows = await self._fetch(
            "SELECT to_char(to_timestamp(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, "
            "platform, currency, COUNT(*), SUM(credits), "
            "COALESCE(SUM(price) FILTER (WHERE refunded_at IS NULL), 0), "
            "COUNT(*) FILTER (WHERE refunded_at IS NOT NULL) FROM purchases "
            "WHERE created_at >= $1 GROUP BY day, platform, currency "
            "ORDER BY day DESC, platform, currency", since)
        return [RevenueDay(row[0], row[1], row[2], int(row[3]), int(row[4]), int(row[5]),
                           int(row[6])) for row in rows]


PURCHASE_COLUMNS = ("charge_id, platform, user_key, pack_id, credits, currency, price, "
                    "created_at, refunded_at")


def _purchase(row: asyncpg.Record) -> PurchaseRecord:
    return PurchaseRecord(row["charge_id"], row["platform"], row["user_key"], row["pack_id"],
                          int(row["credits"]), row["currency"], int(row["price"]),
                          row["created_at"], row["refunded_at"])
