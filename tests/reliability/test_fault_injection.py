"""1,000 jobs through the service against two real HTTP backends that fail 30% of calls.

The WebUI and Stability backends run unchanged against fakes that answer HTTP errors, rate
limits, malformed and truncated bodies, content-filtered results, dropped connections and
hangs (``tests/fakes/flaky.py``); some jobs are also cancelled by their users. Afterwards
every job is final, every balance equals its ledger, no balance is negative, every job that
did not succeed was refunded exactly once and every success was charged exactly once.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from bot.app import running_app
from bot.config import build_config
from bot.errors import BotError, QueueFull
from bot.events import Done, Failed
from bot.jobs import GenerationRequest
from bot.models import ChatRef, UserRef
from bot.options import Overrides
from tests.fakes.flaky import A1111_KINDS, EXTRA_KINDS, STABILITY_KINDS, FlakyA1111, FlakyStability
from tests.fakes.server import jpeg_bytes

JOBS = 1000
USERS = 40
INITIAL = 1000
PRICES = {"webui": 1, "stab": 2}
STAB_KEY = "sk-flaky-0123456789abcdef"


def _config(tmp: Path, webui: str, stab: str) -> Any:
    return build_config({
        "storage": {"url": f"sqlite:///{tmp / 'bot.db'}"},
        "credits": {"initial": INITIAL, "daily_free": 0},
        "defaults": {"provider": "webui"},
        "limits": {"max_queue": 2 * JOBS, "max_queued_per_user": JOBS},
        "providers": {
            "webui": {"type": "a1111", "url": webui, "cost": PRICES["webui"],
                      "max_concurrency": 8, "timeout": 1.0, "preferred_side": 64,
                      "retries": 2, "poll_interval": 0.2, "connect_timeout": 1.0},
            "stab": {"type": "stability", "url": stab, "api_version": "v1", "api_key": STAB_KEY,
                     "cost": PRICES["stab"], "max_concurrency": 8, "timeout": 1.0,
                     "retries": 2, "connect_timeout": 1.0},
        },
    }, environ={})


async def test_a_thousand_jobs_with_random_failures_keep_every_credit(tmp_path: Path) -> None:
    rng = random.Random(7)
    users = [UserRef("telegram", str(100 + i)) for i in range(USERS)]
    photos = [jpeg_bytes((96 + 8 * i, 72), (i * 50 % 256, 80, 200)) for i in range(4)]
    outcomes: dict[str, Done | Failed] = {}
    owner: dict[str, tuple[str, str]] = {}  # job id -> (user key, provider)

    async with FlakyA1111(rate=0.3, seed=1) as webui, FlakyStability(STAB_KEY, rate=0.3,
                                                                      seed=2) as stab:
        config = _config(tmp_path, webui.base_url, stab.base_url)
        async with running_app(config) as app:

            async def one(index: int) -> None:
                user = users[index % USERS]
                provider = "stab" if rng.random() < 0.3 else "webui"
                await asyncio.sleep(rng.random() * 2)  # arrivals spread over two seconds
                request = GenerationRequest(
                    user=user, chat=ChatRef("telegram", user.id, private=True),
                    image=photos[index % len(photos)], prompt=f"job {index} in watercolor",
                    overrides=Overrides(provider=provider, seed=index))
                handle = await app.service.submit(request)
                owner[handle.id] = (user.key, provider)
                if rng.random() < 0.05:
                    await asyncio.sleep(rng.random() * 0.5)
                    await app.service.cancel(handle.id, user.key)
                outcomes[handle.id] = await handle.wait()

            results = await asyncio.wait_for(
                asyncio.gather(*(one(i) for i in range(JOBS)), return_exceptions=True), 90)
            unexpected = [r for r in results if isinstance(r, BaseException)]
            assert not [r for r in unexpected if not isinstance(r, QueueFull)], unexpected[:3]
            assert len(outcomes) == JOBS
            assert app.service.active == {}
            assert await app.storage.drift() == []

    # Both backends failed in every way they can.
    assert set(webui.drawn) == {"ok", *A1111_KINDS, *EXTRA_KINDS}, webui.drawn
    assert set(stab.drawn) == {"ok", *STABILITY_KINDS, *EXTRA_KINDS}, stab.drawn

    failures = Counter(type(o.error).__name__ for o in outcomes.values() if isinstance(o, Failed))
    done = [job for job, o in outcomes.items() if isinstance(o, Done)]
    assert sum(failures.values()) > 100 and len(done) > 500, failures
    for name in ("ContentFiltered", "ProviderTimeout", "JobFailed", "ProviderUnavailable",
                 "InvalidProviderRequest", "ProviderCreditsError", "JobCancelled"):
        assert failures[name] > 0, (name, failures)
    for outcome in outcomes.values():
        if isinstance(outcome, Failed):
            assert outcome.refunded and outcome.message and isinstance(outcome.error, BotError)
        else:
            assert outcome.images and outcome.images[0].data[:4] == b"\x89PNG"

    _check_the_ledger(tmp_path / "bot.db", outcomes, owner)


def _check_the_ledger(path: Path, outcomes: dict[str, Done | Failed],
                      owner: dict[str, tuple[str, str]]) -> None:
    db = sqlite3.connect(path)
    try:
        jobs = {row[0]: row[1:] for row in db.execute("SELECT id, status, charge, price FROM jobs")}
        moves = Counter((row[0], row[1]) for row in db.execute(
            "SELECT job_id, kind FROM ledger WHERE job_id IS NOT NULL"))
        balances = dict(db.execute("SELECT key, balance FROM users").fetchall())
    finally:
        db.close()
    assert set(jobs) == set(outcomes)
    spent: Counter[str] = Counter()
    for job_id, outcome in outcomes.items():
        status, charge, price = jobs[job_id]
        user_key, provider = owner[job_id]
        assert price == PRICES[provider]
        assert moves[(job_id, "reserve")] == 1
        if isinstance(outcome, Done):
            assert (status, charge) == ("delivered", "committed")
            assert moves[(job_id, "refund")] == 0
            spent[user_key] += price
        else:
            assert status in ("failed", "cancelled") and charge == "refunded", (status, charge)
            assert moves[(job_id, "refund")] == 1
    for user_key, balance in balances.items():
        assert balance >= 0
        assert balance == INITIAL - spent[user_key], user_key
