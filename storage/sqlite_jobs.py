"""The durable job queue on SQLite: claims, leases, the outbox of results and owed notices.

Every method is one ``BEGIN IMMEDIATE`` transaction, so a state change and the credit
movement it causes commit together; SQLite's single writer makes each claim atomic across
processes without row locks.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

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

T = TypeVar("T")
# A job that ended keeps no secret in its origin (see JobRecord.origin).
END_ORIGIN = "origin = json_remove(origin, '$.secret')"
BALANCE_OF_JOB = "SELECT balance FROM users WHERE key = (SELECT user_key FROM jobs WHERE id = ?)"


def job_from_row(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        id=row["id"], user_key=row["user_key"], chat_key=row["chat_key"],
        provider=row["provider"], status=row["status"], charge=row["charge"],
        price=row["price"], params=json.loads(row["params"]), origin=json.loads(row["origin"]),
        seed=row["seed"], error=row["error"], metadata=json.loads(row["metadata"]),
        created_at=row["created_at"], started_at=row["started_at"],
        finished_at=row["finished_at"], platform=row["platform"], owner=row["owner"],
        affinity=row["affinity"], attempts=row["attempts"], notice=row["notice"],
        delivery_ref=row["delivery_ref"], delivery_attempts=row["delivery_attempts"],
        generated_at=row["generated_at"],
    )


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def topped_up(conn: sqlite3.Connection, user_key: str, grants: Grants) -> int:
    """The user's balance after the first-use grant and today's top-up, each a ledger row."""
    now = time.time()
    row = conn.execute("SELECT balance, last_topup FROM users WHERE key = ?",
                       (user_key,)).fetchone()
    if row is None or row[1] is None:
        # First request (a row made only by /set or a grant has no top-up date yet).
        conn.execute("INSERT OR IGNORE INTO users (key, balance, created_at) "
                     "VALUES (?, 0, ?)", (user_key, now))
        conn.execute("UPDATE users SET balance = balance + ?, last_topup = ? "
                     "WHERE key = ?", (grants.initial, grants.today, user_key))
        if grants.initial:
            conn.execute("INSERT INTO ledger (user_key, amount, kind, note, created_at) "
                         "VALUES (?, ?, 'initial', 'welcome grant', ?)",
                         (user_key, grants.initial, now))
        return (int(row[0]) if row else 0) + grants.initial
    balance, last_topup = int(row[0]), row[1]
    if last_topup == grants.today:
        return balance
    top_up = min(grants.daily_free, max(0, grants.initial - balance))
    conn.execute("UPDATE users SET balance = balance + ?, last_topup = ? WHERE key = ?",
                 (top_up, grants.today, user_key))
    if top_up:
        conn.execute("INSERT INTO ledger (user_key, amount, kind, note, created_at) "
                     "VALUES (?, ?, 'daily', 'daily free credits', ?)",
                     (user_key, top_up, now))
    return balance + top_up


def _insert_job(conn: sqlite3.Connection, job: JobRecord, upload: Blob, limits: QueueLimits,
                event: tuple[str, str] | None, grants: Grants | None) -> int:
    """Store a queued job with its upload and its reservation (after the user's free
    credits, given ``grants``); the balance left."""
    now = time.time()
    if event is not None and not conn.execute(
            "INSERT OR IGNORE INTO processed_events VALUES (?, ?, ?)",
            (*event, now)).rowcount:
        raise EventSeen()
    if grants is not None:
        topped_up(conn, job.user_key, grants)
    marks = _marks(ACTIVE_STATUSES)
    total = conn.execute(
        f"SELECT COUNT(*) FROM jobs WHERE status IN ({marks})",
        ACTIVE_STATUSES).fetchone()[0]
    if total >= limits.total:
        raise QueueLimitReached("total", int(total))
    mine = conn.execute(
        f"SELECT COUNT(*) FROM jobs WHERE user_key = ? AND status IN ({marks})",
        (job.user_key, *ACTIVE_STATUSES)).fetchone()[0]
    if mine >= limits.per_user:
        raise QueueLimitReached("user", int(mine))
    row = conn.execute("SELECT balance FROM users WHERE key = ?",
                       (job.user_key,)).fetchone()
    balance = int(row[0]) if row else 0
    charge = "none"
    if job.price > 0:
        updated = conn.execute(
            "UPDATE users SET balance = balance - ? WHERE key = ? AND balance >= ?",
            (job.price, job.user_key, job.price)).rowcount
        if updated != 1:
            raise NotEnoughCredits(job.price, balance)
        conn.execute("INSERT INTO ledger (user_key, amount, kind, job_id, note, created_at)"
                     " VALUES (?, ?, 'reserve', ?, ?, ?)",
                     (job.user_key, -job.price, job.id, job.provider, now))
        balance -= job.price
        charge = "held"
    conn.execute(
        "INSERT INTO jobs (id, user_key, chat_key, provider, status, charge, price, params,"
        " origin, created_at, notified, platform, affinity)"
        " VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, 1, ?, ?)",
        (job.id, job.user_key, job.chat_key, job.provider, charge, job.price,
         json.dumps(job.params), json.dumps(job.origin), now, job.platform,
         job.affinity))
    conn.execute("INSERT INTO job_blobs VALUES (?, 'input', 0, ?, ?, ?)",
                 (job.id, upload.mime, upload.data, now))
    return balance


def _claim(conn: sqlite3.Connection, instance: str, provider: str, limit: int,
           platforms: Sequence[str], lease: float, only: str | None = None) -> Claim | None:
    """The claim of ``claim_job``; with ``only``, taken only if that job is the one due."""
    now = time.time()
    running = conn.execute("SELECT COUNT(*) FROM jobs WHERE provider = ? AND "
                           "status = 'running'", (provider,)).fetchone()[0]
    if running >= limit:
        return None
    row = conn.execute(
        "SELECT j.id FROM jobs j LEFT JOIN claim_turns t ON t.provider = j.provider "
        "AND t.user_key = j.user_key WHERE j.provider = ? AND j.status = 'queued' AND "
        f"(j.affinity = ? OR (j.affinity IS NULL AND j.platform IN ({_marks(platforms)})))"
        " ORDER BY MAX(COALESCE(t.last_at, 0), j.created_at), j.created_at LIMIT 1",
        (provider, instance, *platforms)).fetchone()
    if row is None:
        return None
    job_id = row[0]
    if only is not None and job_id != only:
        return None
    conn.execute("UPDATE jobs SET status = 'running', owner = ?, lease_until = ?, "
                 "started_at = ?, attempts = attempts + 1, cancel_requested = 0 "
                 "WHERE id = ?", (instance, now + lease, now, job_id))
    conn.execute("INSERT INTO claim_turns VALUES (?, (SELECT user_key FROM jobs WHERE "
                 "id = ?), ?) ON CONFLICT (provider, user_key) DO UPDATE SET "
                 "last_at = excluded.last_at", (provider, job_id, now))
    job = job_from_row(conn.execute("SELECT * FROM jobs WHERE id = ?",
                                    (job_id,)).fetchone())
    blob = conn.execute("SELECT mime, data FROM job_blobs WHERE job_id = ? AND "
                        "kind = 'input'", (job_id,)).fetchone()
    more = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE provider = ? AND status = 'queued' AND "
        f"(affinity = ? OR (affinity IS NULL AND platform IN ({_marks(platforms)}))))",
        (provider, instance, *platforms)).fetchone()[0]
    return Claim(job, Blob(blob[0], bytes(blob[1])) if blob else None, bool(more))


class SQLiteJobQueue:
    """The job half of ``SQLiteStorage`` (mixed in; ``_tx`` and ``_read`` come from it)."""

    async def _tx(self, fn: Callable[[sqlite3.Connection], T], *,
                  background: bool = False) -> T:
        raise NotImplementedError

    async def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        raise NotImplementedError

    # -- creating and claiming -----------------------------------------------------------------
    async def create_job(self, job: JobRecord, *, upload: Blob, limits: QueueLimits,
                         event: tuple[str, str] | None = None,
                         grants: Grants | None = None) -> int:
        """Insert the job with its upload and reserve its price; returns the balance left.

        ``event`` (platform, id) is recorded as processed in the same transaction, so an
        event is marked handled exactly when its job exists; one seen before raises
        ``EventSeen``. With ``grants``, the user's free credits (``ensure_user``) are given
        in the same transaction, one write instead of two."""
        return await self._tx(lambda conn: _insert_job(conn, job, upload, limits, event, grants))

    async def create_started_job(self, job: JobRecord, *, upload: Blob, limits: QueueLimits,
                                 start: StartHere, event: tuple[str, str] | None = None,
                                 grants: Grants | None = None) -> Created:
        """``create_job``, and in the same transaction the job's claim by ``start.instance``
        when it is the job a claim would take now (see ``StartHere``): one write instead of
        two, with the reservation and the start committed together."""

        def fn(conn: sqlite3.Connection) -> Created:
            balance = _insert_job(conn, job, upload, limits, event, grants)
            return Created(balance, _claim(conn, start.instance, job.provider, start.limit,
                                           start.platforms, start.lease, only=job.id))

        return await self._tx(fn)

    async def claim_job(self, instance: str, provider: str, *, limit: int,
                        platforms: Sequence[str], lease: float) -> Claim | None:
        """The next job of ``provider`` for this instance, if one of its ``limit`` slots
        (counted over every process) is free: the least recently served user's oldest job."""
        return await self._tx(lambda conn: _claim(conn, instance, provider, limit, platforms,
                                                  lease), background=True)

    async def queue_order(self, provider: str) -> list[str]:
        """Queued job ids of ``provider`` in the order claims will take them."""
        rows = await self._read(
            "SELECT j.id, j.user_key, j.created_at, t.last_at FROM jobs j LEFT JOIN claim_turns t"
            " ON t.provider = j.provider AND t.user_key = j.user_key WHERE j.provider = ? AND "
            "j.status = 'queued' ORDER BY j.created_at", (provider,))
        return fair_order([(r[0], r[1], r[2], r[3]) for r in rows])

    # -- results and their delivery ------------------------------------------------------------
    async def store_result(self, job_id: str, instance: str, images: Sequence[Blob], *,
                           seed: int | None, metadata: dict[str, Any],
                           deadline: float) -> Stored | None:
        """running → generated, with the images, if this instance still owns the job."""

        def fn(conn: sqlite3.Connection) -> Stored | None:
            now = time.time()
            updated = conn.execute(
                "UPDATE jobs SET status = 'generated', seed = ?, metadata = ?, generated_at = ?, "
                "deliver_after = ?, delivery_deadline = ? WHERE id = ? AND status = 'running' "
                "AND owner = ?", (seed, json.dumps(metadata), now, now, deadline, job_id,
                                  instance)).rowcount
            if not updated:
                return None
            conn.execute("DELETE FROM job_blobs WHERE job_id = ?", (job_id,))
            conn.executemany("INSERT INTO job_blobs VALUES (?, 'result', ?, ?, ?, ?)",
                             [(job_id, index, image.mime, image.data, now)
                              for index, image in enumerate(images)])
            row = conn.execute(BALANCE_OF_JOB, (job_id,)).fetchone()
            return Stored(int(row[0]) if row else None)

        return await self._tx(fn)

    async def results(self, job_id: str) -> list[Blob]:
        rows = await self._read("SELECT mime, data FROM job_blobs WHERE job_id = ? AND "
                                "kind = 'result' ORDER BY idx", (job_id,))
        return [Blob(row[0], bytes(row[1])) for row in rows]

    async def confirm_delivery(self, job_id: str, ref: str, *, keep_results: bool) -> bool:
        """generated → delivered: the reservation is committed, exactly once."""

        def fn(conn: sqlite3.Connection) -> bool:
            now = time.time()
            updated = conn.execute(
                "UPDATE jobs SET status = 'delivered', delivery_ref = ?, finished_at = ?, "
                f"owner = NULL, notice = NULL, {END_ORIGIN} WHERE id = ? AND "
                "status = 'generated'",
                (ref, now, job_id)).rowcount
            if not updated:
                return False
            conn.execute("UPDATE jobs SET charge = 'committed' WHERE id = ? AND charge = 'held'",
                         (job_id,))
            if not keep_results:
                conn.execute("DELETE FROM job_blobs WHERE job_id = ?", (job_id,))
            return True

        return await self._tx(fn)

    async def delivery_failed(self, job_id: str, *, retry_at: float) -> None:
        """The platform refused it for now: back to the outbox, tried again at ``retry_at``."""
        await self._tx(lambda conn: conn.execute(
            "UPDATE jobs SET owner = NULL, lease_until = NULL, deliver_after = ?, "
            "delivery_attempts = delivery_attempts + 1 WHERE id = ? AND status = 'generated'",
            (retry_at, job_id)))

    async def claim_deliveries(self, instance: str, platforms: Sequence[str], *, lease: float,
                               limit: int = 10) -> list[JobRecord]:
        """Generated results due for delivery that no live process holds."""

        def fn(conn: sqlite3.Connection) -> list[JobRecord]:
            now = time.time()
            rows = conn.execute(
                "SELECT * FROM jobs WHERE status = 'generated' AND deliver_after <= ? AND "
                "(owner IS NULL OR lease_until < ?) AND (affinity = ? OR (affinity IS NULL AND "
                f"platform IN ({_marks(platforms)}))) ORDER BY deliver_after LIMIT ?",
                (now, now, instance, *platforms, limit)).fetchall()
            for row in rows:
                conn.execute("UPDATE jobs SET owner = ?, lease_until = ? WHERE id = ?",
                             (instance, now + lease, row["id"]))
            return [replace(job_from_row(row), owner=instance) for row in rows]

        return await self._tx(fn, background=True)

    # -- ending a job without an image -------------------------------------------------------
    @staticmethod
    def _refund(conn: sqlite3.Connection, job_id: str, reason: str) -> None:
        """Give back a held reservation, exactly once."""
        row = conn.execute("SELECT user_key, price FROM jobs WHERE id = ? AND charge = 'held'",
                           (job_id,)).fetchone()
        if row is None:
            return
        conn.execute("UPDATE jobs SET charge = 'refunded' WHERE id = ?", (job_id,))
        conn.execute("UPDATE users SET balance = balance + ? WHERE key = ?", (row[1], row[0]))
        conn.execute("INSERT INTO ledger (user_key, amount, kind, job_id, note, created_at) "
                     "VALUES (?, ?, 'refund', ?, ?, ?)",
                     (row[0], row[1], job_id, reason, time.time()))

    def _end(self, conn: sqlite3.Connection, job_id: str, status: str, error: str | None,
             notice: str | None, metadata: dict[str, Any] | None = None) -> bool:
        marks = _marks(ACTIVE_STATUSES)
        updated = conn.execute(
            "UPDATE jobs SET status = ?, error = ?, finished_at = ?, owner = NULL, notice = ?, "
            f"notice_until = NULL, metadata = COALESCE(?, metadata), {END_ORIGIN} "
            f"WHERE id = ? AND status IN ({marks})",
            (status, error, time.time(), notice,
             json.dumps(metadata) if metadata is not None else None, job_id,
             *ACTIVE_STATUSES)).rowcount
        if not updated:
            return False
        self._refund(conn, job_id, status)
        conn.execute("DELETE FROM job_blobs WHERE job_id = ?", (job_id,))
        return True

    async def finish_job(self, job_id: str, status: str, *, error: str | None = None,
                         metadata: dict[str, Any] | None = None,
                         notice: str | None = None) -> int | None:
        """End an unfinished job as failed, cancelled or expired, refunding it; returns the
        user's balance. ``notice`` marks a message owed to the user (sent by ``take_notices``)."""
        if status not in REFUNDED_STATUSES:
            raise ValueError(f"not a refunded status: {status}")

        def fn(conn: sqlite3.Connection) -> int | None:
            self._end(conn, job_id, status, error, notice, metadata)
            row = conn.execute("SELECT u.balance FROM users u JOIN jobs j ON j.user_key = u.key "
                               "WHERE j.id = ?", (job_id,)).fetchone()
            return int(row[0]) if row else None

        return await self._tx(fn)

    async def request_cancel(self, job_id: str, user_key: str | None = None) -> str | None:
        """Cancel a job: "cancelled" if it was queued (refunded now), "requested" if running
        (its owner stops it), None if it is not the user's or no longer cancellable."""

        def fn(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT status, user_key FROM jobs WHERE id = ?",
                               (job_id,)).fetchone()
            if row is None or (user_key is not None and row[1] != user_key):
                return None
            if row[0] == "queued":
                return "cancelled" if self._end(conn, job_id, "cancelled", "JobCancelled",
                                                None) else None
            if row[0] == "running":
                conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
                return "requested"
            return None

        return await self._tx(fn)

    async def latest_active(self, user_key: str) -> JobRecord | None:
        """The user's newest job that can still be cancelled."""
        rows = await self._read("SELECT * FROM jobs WHERE user_key = ? AND status IN "
                                "('queued', 'running') AND cancel_requested = 0 "
                                "ORDER BY created_at DESC LIMIT 1", (user_key,))
        return job_from_row(rows[0]) if rows else None

    async def get_job(self, job_id: str) -> JobRecord | None:
        rows = await self._read("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return job_from_row(rows[0]) if rows else None

    async def job_statuses(self, job_ids: Sequence[str]) -> dict[str, str]:
        if not job_ids:
            return {}
        rows = await self._read(
            f"SELECT id, status FROM jobs WHERE id IN ({_marks(job_ids)})",
            tuple(job_ids))
        return {row[0]: row[1] for row in rows}

    async def set_origin(self, job_id: str, updates: dict[str, Any]) -> None:
        """Add to what the job remembers of where it was asked (e.g. its status message)."""
        await self._tx(lambda conn: conn.execute(
            "UPDATE jobs SET origin = json_patch(origin, ?) WHERE id = ?",
            (json.dumps(updates), job_id)))

    async def active_jobs(self) -> int:
        rows = await self._read(f"SELECT COUNT(*) FROM jobs WHERE status IN "
                                f"({_marks(ACTIVE_STATUSES)})", ACTIVE_STATUSES)
        return int(rows[0][0])

    # -- processes and their leases ------------------------------------------------------------
    async def register_instance(self, instance: str, *, lease: float,
                                info: dict[str, Any]) -> None:
        now = time.time()
        await self._tx(lambda conn: conn.execute(
            "INSERT INTO instances VALUES (?, ?, ?, ?)",
            (instance, now + lease, now, json.dumps(info))))

    async def heartbeat(self, instance: str, *, lease: float) -> list[str]:
        """Renew this instance's lease and its jobs'; returns its running jobs to cancel."""

        def fn(conn: sqlite3.Connection) -> list[str]:
            until = time.time() + lease
            conn.execute("INSERT INTO instances VALUES (?, ?, ?, '{}') ON CONFLICT (id) DO "
                         "UPDATE SET lease_until = excluded.lease_until",
                         (instance, until, time.time()))
            conn.execute("UPDATE jobs SET lease_until = ? WHERE owner = ? AND status IN "
                         "('running', 'generated')", (until, instance))
            return [row[0] for row in conn.execute(
                "SELECT id FROM jobs WHERE owner = ? AND status = 'running' AND "
                "cancel_requested = 1", (instance,))]

        return await self._tx(fn, background=True)

    async def retire_instance(self, instance: str) -> None:
        """A clean stop: running jobs go back to the queue (the attempt does not count),
        results wait for the next process, and jobs only this instance could run end."""

        def fn(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE jobs SET status = 'queued', owner = NULL, lease_until = NULL, "
                         "attempts = MAX(attempts - 1, 0) WHERE owner = ? AND status = 'running' "
                         "AND affinity IS NULL", (instance,))
            conn.execute("UPDATE jobs SET owner = NULL, lease_until = NULL WHERE owner = ? "
                         "AND status = 'generated' AND affinity IS NULL", (instance,))
            for row in conn.execute("SELECT id FROM jobs WHERE affinity = ? AND status IN "
                                    "('queued', 'running', 'generated')", (instance,)).fetchall():
                self._end(conn, row[0], "failed", "stopped", None)
            conn.execute("DELETE FROM instances WHERE id = ?", (instance,))

        await self._tx(fn)

    async def take_lease(self, name: str, holder: str, *, ttl: float) -> bool:
        """Take or renew the named lease for ``ttl`` seconds; False while another holds it."""
        now = time.time()
        rows = await self._tx(lambda conn: conn.execute(
            "INSERT INTO leases VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
            "holder = excluded.holder, until = excluded.until "
            "WHERE leases.holder = excluded.holder OR leases.until < ? RETURNING holder",
            (name, holder, now + ttl, now)).fetchall(), background=True)
        return bool(rows)

    async def drop_lease(self, name: str, holder: str) -> None:
        """Give the named lease up, if this holder has it: the next one need not wait."""
        await self._tx(lambda conn: conn.execute(
            "DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder)))

    async def recover_expired(self, *, max_attempts: int) -> Recovery:
        """Jobs whose owner's lease ran out: run again (up to ``max_attempts``) with the user
        told, else refunded with the user told; results go back to the outbox."""

        def fn(conn: sqlite3.Connection) -> Recovery:
            now = time.time()
            conn.execute("DELETE FROM instances WHERE lease_until < ?", (now - 3600,))
            dead = "(owner IS NULL OR lease_until IS NULL OR lease_until < ?)"
            requeued, refunded = [], []
            for row in conn.execute(f"SELECT id, attempts, affinity FROM jobs WHERE status = "
                                    f"'running' AND {dead}", (now,)).fetchall():
                job_id, attempts, affinity = row
                if affinity is None and attempts < max_attempts:
                    conn.execute("UPDATE jobs SET status = 'queued', owner = NULL, "
                                 "lease_until = NULL, notice = 'requeued', notice_until = NULL "
                                 "WHERE id = ?", (job_id,))
                    requeued.append(job_id)
                elif self._end(conn, job_id, "failed", "interrupted",
                               None if affinity else "refunded"):
                    refunded.append(job_id)
            for row in conn.execute("SELECT id FROM jobs WHERE affinity IS NOT NULL AND status IN "
                                    "('queued', 'generated') AND affinity NOT IN (SELECT id FROM "
                                    "instances WHERE lease_until >= ?)", (now,)).fetchall():
                if self._end(conn, row[0], "failed", "interrupted", None):
                    refunded.append(row[0])
            released = [row[0] for row in conn.execute(
                "UPDATE jobs SET owner = NULL, lease_until = NULL WHERE status = 'generated' AND "
                "owner IS NOT NULL AND lease_until < ? RETURNING id", (now,)).fetchall()]
            return Recovery(tuple(requeued), tuple(refunded), tuple(released))

        return await self._tx(fn, background=True)

    async def expire_undelivered(self) -> list[str]:
        """Results not delivered by their deadline: refunded, with the user told."""

        def fn(conn: sqlite3.Connection) -> list[str]:
            ids = [row[0] for row in conn.execute(
                "SELECT id FROM jobs WHERE status = 'generated' AND delivery_deadline < ? AND "
                "(owner IS NULL OR lease_until < ?)", (time.time(), time.time())).fetchall()]
            return [job_id for job_id in ids
                    if self._end(conn, job_id, "expired", "undeliverable", "expired")]

        return await self._tx(fn, background=True)

    async def take_notices(self, platforms: Sequence[str], *, lease: float,
                           limit: int = 20) -> list[JobRecord]:
        """Jobs whose users are owed a notice; each is held by this caller for ``lease`` s."""

        def fn(conn: sqlite3.Connection) -> list[JobRecord]:
            now = time.time()
            rows = conn.execute(
                f"SELECT * FROM jobs WHERE platform IN ({_marks(platforms)}) AND notice IS NOT "
                "NULL AND (notice_until IS NULL OR notice_until < ?) ORDER BY created_at LIMIT ?",
                (*platforms, now, limit)).fetchall()
            conn.executemany("UPDATE jobs SET notice_until = ? WHERE id = ?",
                             [(now + lease, row["id"]) for row in rows])
            return [job_from_row(row) for row in rows]

        return await self._tx(fn, background=True)

    async def mark_notified(self, job_id: str) -> None:
        await self._tx(lambda conn: conn.execute(
            "UPDATE jobs SET notice = NULL, notice_until = NULL WHERE id = ?", (job_id,)))

    async def purge(self, *, results_before: float, events_before: float) -> None:
        """Delete kept results and processed-event ids older than the given moments."""

        def fn(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM job_blobs WHERE kind = 'result' AND job_id IN (SELECT id "
                         "FROM jobs WHERE status = 'delivered' AND finished_at < ?)",
                         (results_before,))
            conn.execute("DELETE FROM processed_events WHERE created_at < ?", (events_before,))

        await self._tx(fn, background=True)
