"""Several processes on one SQLite database, killed with SIGKILL at random moments.

Two ``img2img-bot run`` processes (one receives Telegram updates and runs jobs, the other is a
``--role worker`` that only runs and delivers them) and a stream of ``img2img-bot transform``
processes share one database, one fake Bot API and one fake WebUI. 50 requests from 10 users
arrive while, 20 times, a random one of them is killed with SIGKILL at a random moment and
started again. Afterwards every job ended either delivered with exactly one committed charge,
or refunded exactly once; every balance equals its ledger; no result photo in a chat lacks
its committed charge; no committed charge lacks a delivery; and the backend, limited to two
requests at a time, never saw more.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.a1111 import FakeA1111
from tests.fakes.server import jpeg_bytes
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.telegram.bot_process import stop_all

USERS = [100 + i for i in range(10)]
REQUESTS = 50
KILLS = int(os.environ.get("CHAOS_KILLS", "20"))
SLOTS = 2


def _config(folder: Path, fake: FakeTelegram, a1111: FakeA1111) -> Path:
    path = folder / "config.toml"
    path.write_text(f"""
log_level = "INFO"

[storage]
url = "sqlite:///{folder / 'bot.db'}"

[telegram]
token = "{TOKEN}"
api_base = "{fake.base_url}"
progress_interval = 0.2

[credits]
initial = 100
daily_free = 0

[limits]
max_queued_per_user = 10

[jobs]
lease = 1.0
heartbeat = 0.25
poll = 0.1
retry_base = 0.5

[defaults]
provider = "webui"

[providers.webui]
type = "a1111"
url = "{a1111.base_url}"
cost = 1
timeout = 30
poll_interval = 0.1
max_concurrency = {SLOTS}
""", encoding="utf-8")
    return path


class Fleet:
    """The bot processes of the test, each restarted after it is killed."""

    def __init__(self, config: Path, folder: Path) -> None:
        self.config = config
        self.folder = folder
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.transforms = 0

    async def start(self, name: str) -> None:
        args = {"gateway": ["run"], "worker": ["run", "--role", "worker"]}.get(name)
        if args is None:  # the CLI: one transform after another
            self.transforms += 1
            photo = self.folder / "photo.jpg"
            args = ["transform", str(photo), "a lighthouse", "-o",
                    str(self.folder / f"cli-{self.transforms}.png"), "--user", "cli:1"]
        with (self.folder / f"{name}.log").open("ab") as log:  # kept for a failure's reader
            self.procs[name] = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "--config", str(self.config), *args,
                stdout=asyncio.subprocess.DEVNULL, stderr=log)

    async def kill(self, name: str) -> None:
        proc = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()

    async def keep_transforming(self) -> None:
        while True:
            await self.procs["cli"].wait()
            await self.start("cli")

    async def stop(self) -> None:
        await stop_all(self.procs.values())


@contextlib.asynccontextmanager
async def fleet(folder: Path, fake: FakeTelegram, a1111: FakeA1111) -> AsyncIterator[Fleet]:
    (folder / "photo.jpg").write_bytes(jpeg_bytes((160, 120)))
    running = Fleet(_config(folder, fake, a1111), folder)
    for name in ("gateway", "worker", "cli"):
        await running.start(name)
    try:
        yield running
    finally:
        await running.stop()


def _jobs(db: Path) -> list[tuple[str, str, str, str, int, str]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute("SELECT id, user_key, status, charge, price, origin FROM jobs"))


async def _settled(db: Path, fake: FakeTelegram, timeout: float) -> int:
    """Wait until every update was taken and every Telegram job has ended; how many jobs."""
    await fake.wait_until_consumed(timeout)
    loop = asyncio.get_running_loop()
    seen, since = -1, loop.time()
    async with asyncio.timeout(timeout):
        while True:
            jobs = await asyncio.to_thread(_jobs, db)
            telegram = [j for j in jobs if j[1].startswith("telegram:")]
            if len(telegram) != seen:  # handlers may still be turning updates into jobs
                seen, since = len(telegram), loop.time()
            ended = all(j[2] in ("delivered", "failed", "cancelled", "expired")
                        for j in telegram)
            if telegram and ended and loop.time() - since > 3:
                return len(telegram)
            await asyncio.sleep(0.2)


@pytest.mark.timeout(300)
async def test_processes_killed_at_random_keep_every_promise(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "10")))
    async with FakeTelegram(token=TOKEN, username="img2img_test_bot") as fake, \
            FakeA1111(delay=0.3) as a1111:
        for user in USERS:
            fake.add_chat(user)
        updates = []
        async with fleet(tmp_path, fake, a1111) as running:
            transforming = asyncio.create_task(running.keep_transforming())
            for index in range(REQUESTS):
                user = USERS[index % len(USERS)]
                updates.append(fake.push_update(fake.build.photo(
                    jpeg_bytes((320, 240), (index * 5 % 256, 80, 160)),
                    caption=f"/img2img picture {index}", chat_id=user, user_id=user)))
            kills: Counter[str] = Counter()
            for _ in range(KILLS):
                await asyncio.sleep(rng.uniform(0.2, 1.2))
                victim = rng.choice(["gateway", "worker", "cli"])
                kills[victim] += 1
                await running.kill(victim)
                if victim != "cli":  # the transform loop restarts the CLI by itself
                    await asyncio.sleep(rng.uniform(0.0, 0.5))
                    await running.start(victim)
            made = await _settled(tmp_path / "bot.db", fake, timeout=120)
            transforming.cancel()
            await asyncio.gather(transforming, return_exceptions=True)
            # The last transform ends by itself: a job whose process is stopped mid-run stays
            # running until another process takes its lease over, which is not checked here.
            await asyncio.wait_for(running.procs["cli"].wait(), 60)
            await asyncio.sleep(1.0)  # the last notices go out
        _check(tmp_path / "bot.db", fake)
        assert a1111.max_in_flight <= SLOTS
        assert sum(kills.values()) == KILLS
        # Every request becomes a job: an update is confirmed to Telegram only once its job
        # is stored, so one whose gateway was killed first comes again to the next.
        assert made == REQUESTS, (made, [m.text for m in fake.messages(USERS[0])][:5])


def _check(db: Path, fake: FakeTelegram) -> None:
    with sqlite3.connect(db) as conn:
        jobs = conn.execute("SELECT id, user_key, status, charge, price, origin, notice "
                            "FROM jobs").fetchall()
        moves = Counter(conn.execute("SELECT job_id, kind FROM ledger WHERE job_id IS NOT NULL"))
        ledger = dict(conn.execute("SELECT user_key, SUM(amount) FROM ledger GROUP BY user_key"))
        balances = dict(conn.execute("SELECT key, balance FROM users"))

    results_by_request: Counter[tuple[int, int]] = Counter()
    for user in USERS:
        for message in fake.messages(user):
            if message.kind == "photo" and "🔁 Again" in message.button_texts:
                assert message.reply_to_message_id is not None
                results_by_request[(user, message.reply_to_message_id)] += 1
    statuses: Counter[str] = Counter()
    delivered_requests = set()
    for job_id, user_key, status, charge, _price, origin, notice in jobs:
        statuses[status] += 1
        assert moves[(job_id, "reserve")] == 1, job_id
        if status == "delivered":
            assert charge == "committed" and moves[(job_id, "refund")] == 0
            if user_key.startswith("telegram:"):
                where = json.loads(origin)
                request = (int(where["chat_id"]), int(where["message_id"]))
                assert results_by_request[request] >= 1, "a charge without a delivery"
                delivered_requests.add(request)
        else:
            assert status in ("failed", "cancelled", "expired"), (job_id, status)
            assert charge == "refunded" and moves[(job_id, "refund")] == 1
            if user_key.startswith("telegram:"):
                assert notice is None, "a refunded user was not told"
    # Every result photo in a chat belongs to a delivered, charged job: no free image.
    assert set(results_by_request) <= delivered_requests
    for user_key, balance in balances.items():
        assert balance == ledger.get(user_key, 0)
    assert statuses["delivered"] > 0


async def test_one_slot_is_one_request_at_a_time_over_three_processes(tmp_path: Path) -> None:
    async with FakeTelegram(token=TOKEN, username="img2img_test_bot") as fake, \
            FakeA1111(delay=0.4) as a1111:
        config = _config(tmp_path, fake, a1111)
        config.write_text(config.read_text().replace(f"max_concurrency = {SLOTS}",
                                                     "max_concurrency = 1"))
        (tmp_path / "photo.jpg").write_bytes(jpeg_bytes((160, 120)))
        procs = [await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--config", str(config), "transform",
            str(tmp_path / "photo.jpg"), f"picture {i}", "-o", str(tmp_path / f"{i}.png"),
            "--user", f"cli:{i}", stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE) for i in range(3)]
        outcomes = await asyncio.gather(*(asyncio.wait_for(p.communicate(), 60) for p in procs))
        assert [p.returncode for p in procs] == [0, 0, 0], [e.decode() for _, e in outcomes]
        assert len(a1111.img2img_bodies) == 3
        assert a1111.max_in_flight == 1
