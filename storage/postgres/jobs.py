"""The durable job queue on PostgreSQL: the same contract as ``storage/sqlite_jobs.py``.

Claims of one provider take turns on a transaction-scoped advisory lock, so the slots of
``max_concurrency`` are counted over every process; the job itself is picked with
``FOR UPDATE SKIP LOCKED``. A user's new jobs take turns on the user's row, so the per-user
queue limit holds under simultaneous requests.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from storage.base import (
    ACTIVE_STATUSES,
    REFUNDED_STATUSES,
    Blob,
    Claim,
    Created,
    Grants,
    JobRecord,
    QueueLimits,
    Recovery,
    StartHere,
    Stored,
)
from storage.errors import EventSeen, NotEnoughCredits, QueueLimitReached
from storage.fairness import fair_order

Connection: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"
ACTIVE = list(ACTIVE_STATUSES)
QUEUE_LOCK = 0x1316_2B08  # any constant, the same in every process on the database


def job_from_row(row: asyncpg.Record) -> JobRecord:
    return JobRecord(
        id=row["id"], user_key=row["user_key"], chat_key=row["chat_key"],
        provider=row["provider"], status=row["status"], charge=row["charge"],
        price=row["price"], params=row["params"], origin=row["origin"], seed=row["seed"],
        error=row["error"], metadata=row["metadata"], created_at=row["created_at"],
        started_at=row["started_at"], finished_at=row["finished_at"], platform=row["platform"],
        owner=row["owner"], affinity=row["affinity"], attempts=row["attempts"],
        notice=row["notice"], delivery_ref=row["delivery_ref"],
        delivery_attempts=row["delivery_attempts"], generated_at=row["generated_at"],
    )


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


class PostgresJobQueue:
    """The job half of ``PostgresStorage`` (mixed in; ``_tx`` and the ``_fetch`` family, which
    turn an outage into ``DatabaseDown``, come from it)."""

    def _tx(self) -> contextlib.AbstractAsyncContextManager[Connection]:
        raise NotImplementedError

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        raise NotImplementedError

    async def _fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        raise NotImplementedError

    async def _fetchval(self, sql: str, *args: Any) -> Any:
        raise NotImplementedError

    async def _execute(self, sql: str, *args: Any) -> str:
        raise NotImplementedError

    @staticmethod
    async def _ledger_row(conn: Connection, user_key: str, amount: int, kind: str,
                          job_id: str | None, note: str, now: float) -> None:
        raise NotImplementedError

    # -- creating and claiming -----------------------------------------------------------------
    async def create_job(self, job: JobRecord, *, upload: Blob, limits: QueueLimits,
                         event: tuple[str, str] | None = None,
                         grants: Grants | None = None) -> int:
        async with self._tx() as conn:
            return await self._insert_job(conn, job, upload, limits, event, grants)

    async def create_started_job(self, job: JobRecord, *, upload: Blob, limits: QueueLimits,
                                 start: StartHere, event: tuple[str, str] | None = None,
                                 grants: Grants | None = None) -> Created:
        async with self._tx() as conn:
            balance = await self._insert_job(conn, job, upload, limits, event, grants)
            return Created(balance, await _claim(conn, start.instance, job.provider,
                                                 start.limit, start.platforms, start.lease,
                                                 only=job.id))

    async def claim_job(self, instance: str, provider: str, *, limit: int,
                        platforms: Sequence[str], lease: float) -> Claim | None:
        async with self._tx() as conn:
            return await _claim(conn, instance, provider, limit, platforms, lease)

    async def _insert_job(self, conn: Connection, job: JobRecord, upload: Blob,
                          limits: QueueLimits, event: tuple[str, str] | None,
                          grants: Grants | None) -> int:
        """Store a queued job with its upload and its reservation (after the user's free
        credits, given ``grants``); the balance left."""
        now = time.time()
        if event is not None and await conn.fetchval(
                "INSERT INTO processed_events VALUES ($1, $2, $3) ON CONFLICT DO NOTHING "
                "RETURNING 1", *event, now) is None:
            raise EventSeen()
        # Creations take turns on one advisory lock, so the queue's total limit holds
        # exactly with several gateways (a lock per user would keep only the per-user one);
        # it is held for a few statements. The user's row lock makes the reservation exact.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", QUEUE_LOCK)
        if grants is not None:  # after the queue lock: creations lock it before a user's row
            await topped_up(conn, job.user_key, grants)
        have = await conn.fetchval("SELECT balance FROM users WHERE key = $1 FOR UPDATE",
                                   job.user_key)
        total = await conn.fetchval("SELECT COUNT(*) FROM jobs WHERE status = ANY($1)",
                                    ACTIVE)
        if total >= limits.total:
            raise QueueLimitReached("total", int(total))
        mine = await conn.fetchval("SELECT COUNT(*) FROM jobs WHERE user_key = $1 AND "
                                   "status = ANY($2)", job.user_key, ACTIVE)
        if mine >= limits.per_user:
            raise QueueLimitReached("user", int(mine))
        balance = int(have or 0)
        charge = "none"
        if job.price > 0:
            if balance < job.price:
                raise NotEnoughCredits(job.price, balance)
            await conn.execute("UPDATE users SET balance = balance - $1 WHERE key = $2",
                               job.price, job.user_key)
            await self._ledger_row(conn, job.user_key, -job.price, "reserve", job.id,
                                   job.provider, now)
            balance -= job.price
            charge = "held"
        await conn.execute(
            "INSERT INTO jobs (id, user_key, chat_key, provider, status, charge, price, params,"
            " origin, created_at, notified, platform, affinity) VALUES ($1, $2, $3, $4, "
            "'queued', $5, $6, $7, $8, $9, true, $10, $11)", job.id, job.user_key,
            job.chat_key, job.provider, charge, job.price, job.params, job.origin, now,
            job.platform, job.affinity)
        await conn.execute("INSERT INTO job_blobs VALUES ($1, 'input', 0, $2, $3, $4)",
                           job.id, upload.mime, upload.data, now)
        return balance

    async def queue_order(self, provider: str) -> list[str]:
        rows = await self._fetch(
            "SELECT j.id, j.user_key, j.created_at, t.last_at FROM jobs j LEFT JOIN claim_turns t"
            " ON t.provider = j.provider AND t.user_key = j.user_key WHERE j.provider = $1 AND "
            "j.status = 'queued' ORDER BY j.created_at", provider)
        return fair_order([(r[0], r[1], r[2], r[3]) for r in rows])

    # -- results and their delivery ------------------------------------------------------------
    async def store_result(self, job_id: str, instance: str, images: Sequence[Blob], *,
                           seed: int | None, metadata: dict[str, Any],
                           deadline: float) -> Stored | None:
        async with self._tx() as conn:
            now = time.time()
            updated = await conn.execute(
                "UPDATE jobs SET status = 'generated', seed = $1, metadata = $2, generated_at = $3,"
                " deliver_after = $3, delivery_deadline = $4 WHERE id = $5 AND status = 'running'"
                " AND owner = $6", seed, metadata, now, deadline, job_id, instance)
            if not _count(updated):
                return None
            await conn.execute("DELETE FROM job_blobs WHERE job_id = $1", job_id)
            await conn.executemany("INSERT INTO job_blobs VALUES ($1, 'result', $2, $3, $4, $5)",
                                   [(job_id, index, image.mime, image.data, now)
                                    for index, image in enumerate(images)])
            balance = await conn.fetchval(
                "SELECT balance FROM users WHERE key = (SELECT user_key FROM jobs WHERE id = $1)",
                job_id)
            return Stored(None if balance is None else int(balance))

    async def results(self, job_id: str) -> list[Blob]:
        rows = await self._fetch("SELECT mime, data FROM job_blobs WHERE job_id = $1 AND "
                                     "kind = 'result' ORDER BY idx", job_id)
        return [Blob(row["mime"], bytes(row["data"])) for row in rows]

    async def confirm_delivery(self, job_id: str, ref: str, *, keep_results: bool) -> bool:
        async with self._tx() as conn:
            updated = await conn.execute(
                "UPDATE jobs SET status = 'delivered', delivery_ref = $1, finished_at = $2, "
                "owner = NULL, notice = NULL, origin = origin - 'secret', charge = CASE WHEN "
                "charge = 'held' THEN 'committed' ELSE charge END WHERE id = $3 AND "
                "status = 'generated'",
                ref, time.time(), job_id)
            if not _count(updated):
                return False
            if not keep_results:
                await conn.execute("DELETE FROM job_blobs WHERE job_id = $1", job_id)
            return True

    async def delivery_failed(self, job_id: str, *, retry_at: float) -> None:
        await self._execute(
            "UPDATE jobs SET owner = NULL, lease_until = NULL, deliver_after = $1, "
            "delivery_attempts = delivery_attempts + 1 WHERE id = $2 AND status = 'generated'",
            retry_at, job_id)

    async def claim_deliveries(self, instance: str, platforms: Sequence[str], *, lease: float,
                               limit: int = 10) -> list[JobRecord]:
        async with self._tx() as conn:
            now = time.time()
            rows = await conn.fetch(
                "SELECT * FROM jobs WHERE status = 'generated' AND deliver_after <= $1 AND "
                "(owner IS NULL OR lease_until < $1) AND (affinity = $2 OR (affinity IS NULL AND "
                "platform = ANY($3))) ORDER BY deliver_after LIMIT $4 FOR UPDATE SKIP LOCKED",
                now, instance, list(platforms), limit)
            await conn.execute("UPDATE jobs SET owner = $1, lease_until = $2 WHERE id = ANY($3)",
                               instance, now + lease, [row["id"] for row in rows])
            return [replace(job_from_row(row), owner=instance) for row in rows]

    # -- ending a job without an image -------------------------------------------------------
    async def _end(self, conn: Connection, job_id: str, status: str, error: str | None,
                   notice: str | None, metadata: dict[str, Any] | None = None) -> bool:
        row = await conn.fetchrow(
            "UPDATE jobs SET status = $1, error = $2, finished_at = $3, owner = NULL, "
            "notice = $4, notice_until = NULL, metadata = COALESCE($5, metadata), "
            "origin = origin - 'secret' WHERE id = $6 AND status = ANY($7) "
            "RETURNING user_key, price, charge",
            status, error, time.time(), notice, metadata, job_id, ACTIVE)
        if row is None:
            return False
        if row["charge"] == "held":
            await conn.execute("UPDATE jobs SET charge = 'refunded' WHERE id = $1", job_id)
            await conn.execute("UPDATE users SET balance = balance + $1 WHERE key = $2",
                               row["price"], row["user_key"])
            await self._ledger_row(conn, row["user_key"], row["price"], "refund", job_id,
                                   status, time.time())
        await conn.execute("DELETE FROM job_blobs WHERE job_id = $1", job_id)
        return True

    async def finish_job(self, job_id: str, status: str, *, error: str | None = None,
                         metadata: dict[str, Any] | None = None,
                         notice: str | None = None) -> int | None:
        if status not in REFUNDED_STATUSES:
            raise ValueError(f"not a refunded status: {status}")
        async with self._tx() as conn:
            await self._end(conn, job_id, status, error, notice, metadata)
            value = await conn.fetchval("SELECT u.balance FROM users u JOIN jobs j "
                                        "ON j.user_key = u.key WHERE j.id = $1", job_id)
            return None if value is None else int(value)

    async def request_cancel(self, job_id: str, user_key: str | None = None) -> str | None:
        async with self._tx() as conn:
            row = await conn.fetchrow("SELECT status, user_key FROM jobs WHERE id = $1 "
                                      "FOR UPDATE", job_id)
            if row is None or (user_key is not None and row["user_key"] != user_key):
                return None
            if row["status"] == "queued":
                return "cancelled" if await self._end(conn, job_id, "cancelled", "JobCancelled",
                                                      None) else None
            if row["status"] == "running":
                await conn.execute("UPDATE jobs SET cancel_requested = true WHERE id = $1",
                                   job_id)
                return "requested"
            return None

    async def latest_active(self, user_key: str) -> JobRecord | None:
        row = await self._fetchrow(
            "SELECT * FROM jobs WHERE user_key = $1 AND status IN ('queued', 'running') AND "
            "NOT cancel_requested ORDER BY created_at DESC LIMIT 1", user_key)
        return None if row is None else job_from_row(row)

    async def get_job(self, job_id: str) -> JobRecord | None:
        row = await self._fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)
        return None if row is None else job_from_row(row)

    async def job_statuses(self, job_ids: Sequence[str]) -> dict[str, str]:
        if not job_ids:
            return {}
        rows = await self._fetch("SELECT id, status FROM jobs WHERE id = ANY($1)",
                                     list(job_ids))
        return {row["id"]: row["status"] for row in rows}

    async def set_origin(self, job_id: str, updates: dict[str, Any]) -> None:
        await self._execute("UPDATE jobs SET origin = origin || $1 WHERE id = $2",
                                updates, job_id)

    async def active_jobs(self) -> int:
        return int(await self._fetchval("SELECT COUNT(*) FROM jobs WHERE status = ANY($1)",
                                            ACTIVE))

    # -- processes and their leases ------------------------------------------------------------
    async def register_instance(self, instance: str, *, lease: float,
                                info: dict[str, Any]) -> None:
        now = time.time()
        await self._execute("INSERT INTO instances VALUES ($1, $2, $3, $4)",
                                instance, now + lease, now, info)

    async def heartbeat(self, instance: str, *, lease: float) -> list[str]:
        async with self._tx() as conn:
            now = time.time()
            await conn.execute("INSERT INTO instances VALUES ($1, $2, $3, '{}') ON CONFLICT (id) "
                               "DO UPDATE SET lease_until = excluded.lease_until",
                               instance, now + lease, now)
            await conn.execute("UPDATE jobs SET lease_until = $1 WHERE owner = $2 AND status IN "
                               "('running', 'generated')", now + lease, instance)
            rows = await conn.fetch("SELECT id FROM jobs WHERE owner = $1 AND status = 'running' "
                                    "AND cancel_requested", instance)
            return [row["id"] for row in rows]

    async def retire_instance(self, instance: str) -> None:
        async with self._tx() as conn:
            await conn.execute("UPDATE jobs SET status = 'queued', owner = NULL, lease_until = "
                               "NULL, attempts = GREATEST(attempts - 1, 0) WHERE owner = $1 AND "
                               "status = 'running' AND affinity IS NULL", instance)
            await conn.execute("UPDATE jobs SET owner = NULL, lease_until = NULL WHERE owner = $1"
                               " AND status = 'generated' AND affinity IS NULL", instance)
            for row in await conn.fetch("SELECT id FROM jobs WHERE affinity = $1 AND status = "
                                        "ANY($2) FOR UPDATE", instance, ACTIVE):
                await self._end(conn, row["id"], "failed", "stopped", None)
            await conn.execute("DELETE FROM instances WHERE id = $1", instance)

    async def take_lease(self, name: str, holder: str, *, ttl: float) -> bool:
        now = time.time()
        taken = await self._fetchval(
            "INSERT INTO leases VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET "
            "holder = excluded.holder, until = excluded.until "
            "WHERE leases.holder = excluded.holder OR leases.until < $4 RETURNING holder",
            name, holder, now + ttl, now)
        return taken is not None

    async def drop_lease(self, name: str, holder: str) -> None:
        await self._execute("DELETE FROM leases WHERE name = $1 AND holder = $2", name, holder)

    async def recover_expired(self, *, max_attempts: int) -> Recovery:
        async with self._tx() as conn:
            now = time.time()
            await conn.execute("DELETE FROM instances WHERE lease_until < $1", now - 3600)
            requeued, refunded = [], []
            for row in await conn.fetch(
                    "SELECT id, attempts, affinity FROM jobs WHERE status = 'running' AND "
                    "(owner IS NULL OR lease_until IS NULL OR lease_until < $1) "
                    "FOR UPDATE SKIP LOCKED", now):
                if row["affinity"] is None and row["attempts"] < max_attempts:
                    await conn.execute("UPDATE jobs SET status = 'queued', owner = NULL, "
                                       "lease_until = NULL, notice = 'requeued', notice_until = "
                                       "NULL WHERE id = $1", row["id"])
                    requeued.append(row["id"])
                elif await self._end(conn, row["id"], "failed", "interrupted",
                                     None if row["affinity"] else "refunded"):
                    refunded.append(row["id"])
            for row in await conn.fetch(
                    "SELECT id FROM jobs WHERE affinity IS NOT NULL AND status IN ('queued', "
                    "'generated') AND affinity NOT IN (SELECT id FROM instances WHERE "
                    "lease_until >= $1) FOR UPDATE SKIP LOCKED", now):
                if await self._end(conn, row["id"], "failed", "interrupted", None):
                    refunded.append(row["id"])
            released = [row["id"] for row in await conn.fetch(
                "UPDATE jobs SET owner = NULL, lease_until = NULL WHERE status = 'generated' AND "
                "owner IS NOT NULL AND lease_until < $1 RETURNING id", now)]
            return Recovery(tuple(requeued), tuple(refunded), tuple(released))

    async def expire_undelivered(self) -> list[str]:
        async with self._tx() as conn:
            now = time.time()
            rows = await conn.fetch(
                "SELECT id FROM jobs WHERE status = 'generated' AND delivery_deadline < $1 AND "
                "(owner IS NULL OR lease_until < $1) FOR UPDATE SKIP LOCKED", now)
            return [row["id"] for row in rows
                    if await self._end(conn, row["id"], "expired", "undeliverable", "expired")]

    async def take_notices(self, platforms: Sequence[str], *, lease: float,
                           limit: int = 20) -> list[JobRecord]:
        async with self._tx() as conn:
            now = time.time()
            rows = await conn.fetch(
                "SELECT * FROM jobs WHERE platform = ANY($1) AND notice IS NOT NULL AND "
                "(notice_until IS NULL OR notice_until < $2) ORDER BY created_at LIMIT $3 "
                "FOR UPDATE SKIP LOCKED", list(platforms), now, limit)
            await conn.execute("UPDATE jobs SET notice_until = $1 WHERE id = ANY($2)",
                               now + lease, [row["id"] for row in rows])
            return [job_from_row(row) for row in rows]

    async def mark_notified(self, job_id: str) -> None:
        await self._execute("UPDATE jobs SET notice = NULL, notice_until = NULL "
                                "WHERE id = $1", job_id)

    async def purge(self, *, results_before: float, events_before: float) -> None:
        async with self._tx() as conn:
            await conn.execute("DELETE FROM job_blobs WHERE kind = 'result' AND job_id IN "
                               "(SELECT id FROM jobs WHERE status = 'delivered' AND "
                               "finished_at < $1)", results_before)
            await conn.execute("DELETE FROM processed_events WHERE created_at < $1",
                               events_before)


async def topped_up(conn: Connection, user_key: str, grants: Grants) -> int:
    """The user's balance after the first-use grant and today's top-up, each a ledger row."""
    now = time.time()
    await conn.execute("INSERT INTO users (key, balance, created_at) VALUES ($1, 0, $2) "
                       "ON CONFLICT (key) DO NOTHING", user_key, now)
    row = await conn.fetchrow("SELECT balance, last_topup FROM users WHERE key = $1 FOR UPDATE",
                              user_key)
    assert row is not None  # inserted above, in this transaction
    balance, last_topup = int(row["balance"]), row["last_topup"]
    if last_topup == grants.today:
        return balance
    # The first request (a row made only by /set or a grant has no top-up date yet) gets
    # the welcome grant; later days top up toward it.
    first = last_topup is None
    amount = grants.initial if first else min(grants.daily_free, max(0, grants.initial - balance))
    await conn.execute("UPDATE users SET balance = balance + $1, last_topup = $2 WHERE key = $3",
                       amount, grants.today, user_key)
    if amount:
        kind, note = ("initial", "welcome grant") if first else ("daily", "daily free credits")
        await conn.execute("INSERT INTO ledger (user_key, amount, kind, note, created_at) "
                           "VALUES ($1, $2, $3, $4, $5)", user_key, amount, kind, note, now)
    return balance + amount


async def _claim(conn: Connection, instance: str, provider: str, limit: int,
                 platforms: Sequence[str], lease: float, only: str | None = None) -> Claim | None:
    """The claim of ``claim_job``; with ``only``, taken only if that job is the one due."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('claim:' || $1))",
                       provider)
    now = time.time()
    running = await conn.fetchval("SELECT COUNT(*) FROM jobs WHERE provider = $1 AND "
                                  "status = 'running'", provider)
    if running >= limit:
        return None
    job_id = await conn.fetchval(
        "SELECT j.id FROM jobs j LEFT JOIN claim_turns t ON t.provider = j.provider "
        "AND t.user_key = j.user_key WHERE j.provider = $1 AND j.status = 'queued' AND "
        "(j.affinity = $2 OR (j.affinity IS NULL AND j.platform = ANY($3))) "
        "ORDER BY GREATEST(COALESCE(t.last_at, 0), j.created_at), j.created_at "
        "LIMIT 1 FOR UPDATE OF j SKIP LOCKED", provider, instance, list(platforms))
    if job_id is None or (only is not None and job_id != only):
        return None
    row = await conn.fetchrow(
        "UPDATE jobs SET status = 'running', owner = $1, lease_until = $2, "
        "started_at = $3, attempts = attempts + 1, cancel_requested = false "
        "WHERE id = $4 RETURNING *", instance, now + lease, now, job_id)
    assert row is not None  # locked by this transaction
    await conn.execute("INSERT INTO claim_turns VALUES ($1, $2, $3) ON CONFLICT "
                       "(provider, user_key) DO UPDATE SET last_at = excluded.last_at",
                       provider, row["user_key"], now)
    blob = await conn.fetchrow("SELECT mime, data FROM job_blobs WHERE job_id = $1 AND "
                               "kind = 'input'", job_id)
    more = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE provider = $1 AND status = 'queued' AND "
        "(affinity = $2 OR (affinity IS NULL AND platform = ANY($3))))", provider,
        instance, list(platforms))
    return Claim(job_from_row(row), Blob(blob["mime"], bytes(blob["data"]))
                 if blob else None, bool(more))
