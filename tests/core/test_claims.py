"""How often the pipeline asks storage for work: a job that can start here starts in the
transaction that stores it; others are claimed once each; no claim finds nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, running_app
from bot.config import build_config
from bot.events import Done
from bot.models import Params
from bot.providers import PROVIDERS
from storage.base import Blob, Claim, Created, JobRecord, QueueLimits
from tests.core.test_service import ALICE, BOB, PHOTO, ScriptedProvider, request


@pytest.fixture
async def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[App]:
    monkeypatch.setitem(PROVIDERS, "scripted", "tests.core.test_service:ScriptedProvider")
    ScriptedProvider.behaviour = {}
    config = build_config({
        "storage": {"url": f"sqlite:///{tmp_path / 'bot.db'}"},
        "credits": {"initial": 100, "daily_free": 0},
        "defaults": {"provider": "main"},
        "limits": {"max_queued_per_user": 10},
        # Idle polls (for other processes' jobs) would add claims of their own: none here.
        "jobs": {"poll": 60},
        "providers": {"main": {"type": "scripted", "cost": 1, "max_concurrency": 2,
                               "timeout": 5}},
    }, environ={})
    async with running_app(config) as built:
        yield built


def count_claims(app: App, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record each claim from now on: whether it found a job."""
    found: list[bool] = []
    real = app.storage.claim_job

    async def counted(*args: Any, **kwargs: Any) -> Claim | None:
        claim = await real(*args, **kwargs)
        found.append(claim is not None)
        return claim

    monkeypatch.setattr(app.storage, "claim_job", counted)
    return found


def count_starts(app: App, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record each job stored with a start in the same transaction: whether it started."""
    started: list[bool] = []
    real = app.storage.create_started_job

    async def counted(*args: Any, **kwargs: Any) -> Created:
        created = await real(*args, **kwargs)
        started.append(created.claim is not None)
        return created

    monkeypatch.setattr(app.storage, "create_started_job", counted)
    return started


async def test_jobs_one_after_another_cost_no_empty_claim(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    await asyncio.sleep(0.2)  # the claim made at start (the queue was empty) is done
    found = count_claims(app, monkeypatch)
    stored = count_starts(app, monkeypatch)
    for _ in range(5):
        handle = await app.service.submit(request())
        assert isinstance(await handle.wait(), Done)
    await asyncio.sleep(0.2)  # a claim woken by the last job's end would show now
    assert found == []  # each job started in the transaction that stored it
    assert stored == [True] * 5
    assert await app.storage.balance(ALICE.key) == 95 and await app.storage.drift() == []


async def test_a_busy_queue_claims_each_job_once_and_stops_when_it_is_empty(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    await asyncio.sleep(0.2)
    found = count_claims(app, monkeypatch)
    gate = asyncio.Event()
    ScriptedProvider.behaviour = {"gate": gate}
    handles = [await app.service.submit(request(user=user)) for user in (ALICE, BOB) * 4]
    await asyncio.sleep(0.2)
    assert found.count(True) == 0  # the first two started as they were stored
    gate.set()
    for handle in handles:
        assert isinstance(await handle.wait(), Done)
    await asyncio.sleep(0.2)
    assert found.count(True) == 6  # the other six, each claimed once
    # A request stored while a claim ran may cost one more look; a finished job costs none.
    assert found.count(False) <= 1
    assert await app.storage.drift() == []


async def test_where_other_processes_queue_jobs_a_freed_slot_looks_for_theirs(
        app: App) -> None:
    await asyncio.sleep(0.2)
    pipeline = app.service.pipeline
    ScriptedProvider.behaviour = {"gate": (gate := asyncio.Event())}

    resolved = asdict(Params("a harbour", "main", 0.5, 20, 7.0, 512, 384))

    async def queue_elsewhere(job_id: str) -> None:  # as a gateway process would
        await app.storage.create_job(
            JobRecord(id=job_id, user_key=ALICE.key, chat_key="telegram:1", provider="main",
                      status="queued", charge="", price=0,
                      params={"prompt": "a harbour", "resolved": resolved},
                      origin={}, platform="telegram", affinity=pipeline.instance),
            upload=Blob("image/jpeg", PHOTO), limits=QueueLimits(100, 100))

    async def status(job_id: str) -> str:
        return (await app.storage.job_statuses([job_id]))[job_id]

    await queue_elsewhere("x1")
    await queue_elsewhere("x2")
    pipeline.wake("main")  # as the next poll would
    for _ in range(50):
        await asyncio.sleep(0.05)
        if await status("x2") != "queued":
            break
    await queue_elsewhere("x3")  # both slots busy; nothing tells this process
    gate.set()
    for _ in range(40):  # long before the next poll (60 s)
        await asyncio.sleep(0.05)
        if await status("x3") != "queued":
            break
    assert await status("x3") != "queued"


async def test_a_request_cancelled_while_its_job_is_stored_started_still_runs_once(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    await asyncio.sleep(0.2)
    real = app.storage.create_started_job
    entered, commit = asyncio.Event(), asyncio.Event()

    async def slow(*args: Any, **kwargs: Any) -> Created:  # the transaction outlives its caller
        entered.set()
        await commit.wait()
        return await real(*args, **kwargs)

    monkeypatch.setattr(app.storage, "create_started_job", slow)
    submit = asyncio.create_task(app.service.submit(request()))
    await entered.wait()
    submit.cancel()
    with pytest.raises(asyncio.CancelledError):
        await submit
    commit.set()
    status = None
    for _ in range(100):  # started by its own transaction, nothing would claim it: it runs here
        await asyncio.sleep(0.05)
        reserved = [e.job_id for e in await app.storage.ledger(ALICE.key) if e.kind == "reserve"]
        if reserved and reserved[0] is not None:
            status = (await app.storage.job_statuses(reserved))[reserved[0]]
            if status not in ("queued", "running", "generated"):
                break
    assert status == "delivered"
    assert await app.storage.balance(ALICE.key) == 99  # charged once, for the image delivered
    assert [e.kind for e in await app.storage.ledger(ALICE.key)] == ["reserve", "initial"]
    assert await app.storage.drift() == [] and app.service.pipeline.busy("main") is False


async def test_a_job_started_by_its_own_transaction_is_not_mistaken_for_one_taken_elsewhere(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between the commit that starts a job and the moment the caller runs it, storage says
    "running": the sweep for jobs other processes took must not take this one for theirs."""
    await asyncio.sleep(0.2)
    real = app.storage.create_started_job
    pipeline = app.service.pipeline

    async def answer_late(*args: Any, **kwargs: Any) -> Created:
        created = await real(*args, **kwargs)  # committed: the job is running in storage
        await pipeline._follow_elsewhere()  # the heartbeat's sweep runs before the answer
        return created

    monkeypatch.setattr(app.storage, "create_started_job", answer_late)
    handle = await app.service.submit(request())
    assert isinstance(await asyncio.wait_for(handle.wait(), 5), Done)
    assert await app.storage.job_statuses([handle.id]) == {handle.id: "delivered"}
