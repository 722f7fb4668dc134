"""20 rounds of SIGKILL at a random moment in a real bot process with a job in flight.

Each round starts ``python -m bot transform`` against a slow WebUI fake and kills it with
SIGKILL at a random moment: during start-up, while the reservation is written, while the
backend works, or while the result is being committed. The next round's process starts on
the same database and, once the dead one's lease has run out, refunds what it left (only the
``transform`` that chose an output path can finish its job). After the last round every
reservation is resolved (committed or refunded, nothing held), every balance equals its
ledger, and the credits add up: nothing created, nothing lost. Four independent lanes of five
rounds run side by side to keep the wall time short.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path

from tests.fakes.a1111 import FakeA1111
from tests.fakes.server import jpeg_bytes

LANES = 4
ROUNDS_PER_LANE = 5
INITIAL = 50
BACKEND_DELAY = 0.4


def _config(folder: Path, url: str) -> Path:
    path = folder / "config.toml"
    path.write_text(f"""
[storage]
url = "sqlite:///{folder / 'bot.db'}"

[credits]
initial = {INITIAL}
daily_free = 0

[jobs]
lease = 1.0
heartbeat = 0.25

[defaults]
provider = "webui"

[providers.webui]
type = "a1111"
url = "{url}"
cost = 1
timeout = 30
poll_interval = 0.1
""")
    return path


async def _transform(config: Path, photo: Path, out: Path, user: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--config", str(config), "transform", str(photo),
        "a lighthouse in oil", "--steps", "12", "-o", str(out), "--user", user,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


async def _kill_at_random(proc: asyncio.subprocess.Process, rng: random.Random) -> str:
    """SIGKILL early (start-up, submit) or after the reservation; returns what happened."""
    assert proc.stderr is not None
    if rng.random() < 0.3:
        await asyncio.sleep(rng.uniform(0.05, 1.0))
        moment = "early"
    else:
        try:
            async with asyncio.timeout(20):
                while b"queued" not in await proc.stderr.readline():
                    if proc.stderr.at_eof():
                        break
        except TimeoutError:
            pass
        await asyncio.sleep(rng.uniform(0.0, BACKEND_DELAY + 0.3))
        moment = "in flight"
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):  # it may have just finished by itself
            os.kill(proc.pid, signal.SIGKILL)
    code = await proc.wait()
    return moment if code == -signal.SIGKILL else "finished first"


def _photo(folder: Path, seed: int) -> Path:
    folder.mkdir()
    photo = folder / "photo.jpg"
    photo.write_bytes(jpeg_bytes((160, 120), (seed * 60 % 256, 120, 40)))
    return photo


async def _lane(folder: Path, seed: int) -> Counter[str]:
    rng = random.Random(seed)
    photo = _photo(folder, seed)
    moments: Counter[str] = Counter()
    async with FakeA1111(delay=BACKEND_DELAY) as fake:
        config = _config(folder, fake.base_url)
        for round_ in range(ROUNDS_PER_LANE):
            user = f"telegram:{rng.randrange(3)}"
            proc = await _transform(config, photo, folder / f"out{round_}.png", user)
            moments[await _kill_at_random(proc, rng)] += 1
        # The restart after the last kill, once the dead processes' leases ran out: it
        # repairs, then runs a job to the end.
        await asyncio.sleep(1.2)
        proc = await _transform(config, photo, folder / "last.png", "telegram:0")
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
    return moments


def _check(db_path: Path) -> Counter[str]:
    db = sqlite3.connect(db_path)
    try:
        jobs = db.execute("SELECT id, user_key, status, charge, price, error FROM jobs").fetchall()
        moves = Counter(db.execute("SELECT job_id, kind FROM ledger WHERE job_id IS NOT NULL"))
        grants = dict(db.execute("SELECT user_key, SUM(amount) FROM ledger WHERE job_id IS NULL "
                                 "GROUP BY user_key").fetchall())
        ledger = dict(db.execute("SELECT user_key, SUM(amount) FROM ledger GROUP BY user_key"))
        balances = dict(db.execute("SELECT key, balance FROM users").fetchall())
    finally:
        db.close()
    statuses: Counter[str] = Counter()
    spent: Counter[str] = Counter()
    for job_id, user_key, status, charge, price, error in jobs:
        statuses["interrupted" if error == "interrupted" else status] += 1
        assert moves[(job_id, "reserve")] == 1
        if status == "delivered":
            assert charge == "committed" and moves[(job_id, "refund")] == 0
            spent[user_key] += price
        else:
            assert status in ("failed", "cancelled", "expired"), status
            assert charge == "refunded" and moves[(job_id, "refund")] == 1
    for user_key, balance in balances.items():
        assert balance >= 0
        assert balance == ledger.get(user_key, 0)  # the balance is the sum of its ledger
        assert grants[user_key] == INITIAL  # only the welcome grant ever created credits
        assert balance == INITIAL - spent[user_key]  # every credit spent bought an image
    return statuses


async def test_sigkill_at_random_moments_never_creates_or_loses_credit(tmp_path: Path) -> None:
    started = time.monotonic()
    lanes = await asyncio.gather(*(_lane(tmp_path / f"lane{i}", seed=i) for i in range(LANES)))
    moments = sum(lanes, Counter())
    statuses = sum((_check(tmp_path / f"lane{i}" / "bot.db") for i in range(LANES)), Counter())
    assert sum(moments.values()) == LANES * ROUNDS_PER_LANE
    # The kills really did land on jobs in flight, and restarts repaired them.
    assert statuses["interrupted"] >= 3, (moments, statuses)
    assert statuses["delivered"] >= LANES, statuses
    assert time.monotonic() - started < 90
