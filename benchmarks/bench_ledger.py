"""The durable job queue: claims + commits per second with 50 concurrent tasks on SQLite (WAL).

Each task loops through a job's whole life in storage: ``create_job`` (queue limits, the
reservation and the upload in one transaction), ``claim_job`` (a free slot counted over every
process, round robin between users), ``store_result`` (the outbox) and ``confirm_delivery``
(the charge commits); every tenth job fails after its claim instead and is refunded. 50 tasks
share 10 users, so reservations race on the same balances and claims on the same queue.
Afterwards the ledger invariant is checked: every balance equals the sum of its ledger rows
(``storage.drift()``) and equals what the jobs say it should be.

For comparison, the same two transactions run back to back from one thread on plain
``sqlite3`` (no event loop, no hop to the connection's thread): the ceiling for this file on
this disk.

    python benchmarks/bench_ledger.py [--tasks 50] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import describe_ms, header
from storage.base import Blob, JobRecord, QueueLimits
from storage.sqlite import SQLiteStorage

UPLOAD = Blob("image/jpeg", b"\xff\xd8" + b"u" * 2048)
RESULT = Blob("image/png", b"\x89PNG" + b"r" * 4096)
LIMITS = QueueLimits(total=100_000, per_user=100_000)

USERS = 10
INITIAL = 10_000_000
PARAMS = {"prompt": "a watercolor painting", "request": {"steps": 20},
          "resolved": {"width": 512, "height": 512, "steps": 20, "strength": 0.6}}


def _record(user: str) -> JobRecord:
    return JobRecord(id=uuid.uuid4().hex, user_key=user, chat_key=user, provider="echo",
                     status="queued", charge="", price=1, params=PARAMS,
                     origin={"chat": 1, "message": 2}, platform="telegram")


async def _through_storage(path: Path, tasks: int, seconds: float) -> None:
    storage = SQLiteStorage(path)
    await storage.open()
    await storage.register_instance("bench", lease=3600, info={})
    users = [f"telegram:{i}" for i in range(USERS)]
    for user in users:
        await storage.ensure_user(user, initial=INITIAL, daily_free=0, today="2026-01-01")
    latencies: list[float] = []
    committed = refunded = 0
    deadline = time.perf_counter() + seconds

    async def task(index: int) -> None:
        nonlocal committed, refunded
        user = users[index % USERS]
        count = 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            record = _record(user)
            await storage.create_job(record, upload=UPLOAD, limits=LIMITS)
            claim = await storage.claim_job("bench", "echo", limit=tasks,
                                            platforms=["telegram"], lease=3600)
            assert claim is not None
            count += 1
            if count % 10 == 0:
                await storage.finish_job(claim.job.id, "failed", error="JobFailed")
                refunded += 1
            else:
                assert await storage.store_result(claim.job.id, "bench", [RESULT], seed=1,
                                                  metadata={}, deadline=time.time() + 3600)
                assert await storage.confirm_delivery(claim.job.id, "1:2", keep_results=False)
                committed += 1
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(task(i) for i in range(tasks)))
    elapsed = time.perf_counter() - started
    drift = await storage.drift()
    balances = [await storage.balance(user) for user in users]
    await storage.close()
    total = committed + refunded
    print(f"-- create, claim, store result, confirm: {tasks} tasks on {USERS} users "
          "(through the storage thread)")
    print(f"   {total / elapsed:8.0f} claims+commits/s, whole jobs ({committed} delivered and "
          f"committed, {refunded} refunded in {elapsed:.1f} s; "
          f"{(4 * committed + 3 * refunded) / elapsed:.0f} transactions/s)")
    print(f"   per job: {describe_ms(latencies)}")
    expected = USERS * INITIAL - committed
    held = sum(b or 0 for b in balances)
    print(f"   drift: {drift or 'none'}; sum of balances {held}, expected {expected} -> "
          f"{'OK' if held == expected else 'WRONG'}")
    _rates.append(total / elapsed)


def _plain_sqlite(path: Path, seconds: float) -> None:
    """The same statements from one thread with the stdlib driver: the ceiling."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("INSERT INTO users (key, balance, created_at) VALUES ('plain', ?, 0)",
                 (INITIAL,))
    import json

    count = 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        job_id, now = uuid.uuid4().hex, time.time()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("SELECT balance FROM users WHERE key = 'plain'").fetchone()
        conn.execute("UPDATE users SET balance = balance - 1 WHERE key = 'plain' AND balance >= 1")
        conn.execute("INSERT INTO ledger (user_key, amount, kind, job_id, note, created_at) "
                     "VALUES ('plain', -1, 'reserve', ?, 'echo', ?)", (job_id, now))
        conn.execute("INSERT INTO jobs (id, user_key, chat_key, provider, status, charge, price,"
                     " params, origin, created_at, notified) VALUES (?, 'plain', 'plain', 'echo',"
                     " 'queued', 'held', 1, ?, ?, ?, 1)",
                     (job_id, json.dumps(PARAMS), json.dumps({"chat": 1}), now))
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE jobs SET status = 'delivered', seed = 1, error = NULL, metadata = "
                     "'{}', finished_at = ? WHERE id = ? AND status IN ('queued', 'running')",
                     (now, job_id))
        conn.execute("UPDATE jobs SET charge = 'committed' WHERE id = ? AND charge = 'held'",
                     (job_id,))
        conn.execute("SELECT u.balance FROM users u JOIN jobs j ON j.user_key = u.key "
                     "WHERE j.id = ?", (job_id,)).fetchone()
        conn.execute("COMMIT")
        count += 1
    elapsed = time.perf_counter() - started
    conn.close()
    print("-- for scale: a reserve and a commit (two transactions) on plain sqlite3, one thread")
    print(f"   {count / elapsed:8.0f} reserve+commit/s")
    _rates.append(count / elapsed)


_rates: list[float] = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    header("credit ledger on SQLite WAL (synchronous=NORMAL)")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ledger.db"
        asyncio.run(_through_storage(path, args.tasks, args.seconds))
        _plain_sqlite(path, args.seconds)
    print(f"   ratio storage/plain: {_rates[0] / _rates[1]:.2f}; target >= 2,000/s with zero "
          "drift")


if __name__ == "__main__":
    main()
