from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from bot import imaging
from bot.app import App, running_app
from bot.config import build_config
from bot.errors import (
    ContentFiltered,
    ImageError,
    InsufficientCredits,
    JobCancelled,
    OptionError,
    PolicyError,
    ProviderTimeout,
    ProviderUnavailable,
    QueueFull,
)
from bot.events import Done, Failed, Progress, Queued, Started
from bot.jobs import GenerationRequest, JobHandle
from bot.models import Capability, ChatRef, GenerationResult, ImageData, ProviderJob, UserRef
from bot.options import Overrides
from bot.providers import PROVIDERS
from bot.providers.base import Provider, Reporter
from tests.fakes.server import jpeg_bytes
from tests.texts import en, raises_message

PHOTO = jpeg_bytes((640, 480))
ALICE = UserRef("telegram", "1")
BOB = UserRef("telegram", "2")
PRIVATE = ChatRef("telegram", "1", private=True)
GROUP = ChatRef("telegram", "-100")


class ScriptedProvider(Provider):
    """An in-process backend whose behaviour each test scripts (the service is under test)."""

    type_name = "scripted"
    CAPABILITIES = Capability.STRENGTH | Capability.SEED | Capability.SAMPLES | Capability.STEPS
    behaviour: ClassVar[dict[str, Any]] = {}

    async def _generate(self, job: ProviderJob, reporter: Reporter) -> GenerationResult:
        script = self.behaviour
        script.get("seen", []).append(job.image.data)
        gate = script.get("gate")
        reporter.accept()
        reporter.progress(0.5, 1.0, None)
        if gate is not None:
            await gate.wait()
        if script.get("delay"):
            await asyncio.sleep(script["delay"])
        if job.params.prompt.startswith("fail"):
            raise ProviderUnavailable()
        if job.params.prompt.startswith("nsfw"):
            raise ContentFiltered()
        if random.random() < script.get("failure_rate", 0.0):
            failure = random.choice(["unavailable", "filtered", "malformed", "hang"])
            if failure == "hang":
                await asyncio.sleep(3600)  # the job timeout ends it
            raise {"unavailable": ProviderUnavailable(), "filtered": ContentFiltered(),
                   "malformed": ValueError("bad")}[failure]
        return GenerationResult(images=(job.image,) * job.params.samples, seed=1234)


@pytest.fixture
async def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[App]:
    monkeypatch.setitem(PROVIDERS, "scripted", f"{__name__}:ScriptedProvider")
    ScriptedProvider.behaviour = {}
    config = build_config({
        "storage": {"url": f"sqlite:///{tmp_path / 'bot.db'}"},
        "credits": {"initial": 10, "daily_free": 0},
        "defaults": {"provider": "main"},
        "limits": {"max_queued_per_user": 50, "max_queue": 1000},
        "providers": {"main": {"type": "scripted", "cost": 1, "max_concurrency": 2,
                               "timeout": 5},
                      "echo": {"type": "echo", "cost": 0}},
    }, environ={})
    async with running_app(config) as built:
        yield built


def request(prompt: str = "a watercolor", user: UserRef = ALICE, chat: ChatRef = PRIVATE,
            image: bytes = PHOTO, **overrides: Any) -> GenerationRequest:
    return GenerationRequest(user=user, chat=chat, image=image, prompt=prompt,
                             overrides=Overrides(**overrides))


async def test_success_charges_once_and_reports_events(app: App) -> None:
    handle = await app.service.submit(request())
    events = [event async for event in handle.events()]
    assert isinstance(events[0], Queued) and isinstance(events[-1], Done)
    assert any(isinstance(e, Started) for e in events)
    assert any(isinstance(e, Progress) and e.fraction == 0.5 for e in events)
    done = events[-1]
    assert isinstance(done, Done)
    assert done.seed == 1234 and done.cost == 1 and done.balance == 9
    assert done.images[0].mime == "image/png"
    assert await app.storage.drift() == []


async def test_failure_refunds_in_full(app: App) -> None:
    handle = await app.service.submit(request("fail please"))
    final = await handle.wait()
    assert isinstance(final, Failed) and final.refunded and final.balance == 10
    assert final.message == en("error-provider-unavailable")
    record = await app.storage.get_job(handle.id)
    assert record is not None and record.status == "failed" and record.charge == "refunded"


async def test_price_scales_with_images_and_megapixels(app: App) -> None:
    handle = await app.service.submit(request(samples=2, size=(1536, 1024)))
    assert (handle.params.width, handle.params.height, handle.params.samples) == (1536, 1024, 2)
    assert handle.price == 2 * 2
    assert isinstance(await handle.wait(), Done)


async def test_refusals_cost_nothing(app: App) -> None:
    with pytest.raises(ImageError):
        await app.service.submit(request(image=b"not an image"))
    with raises_message(OptionError, "error-unknown-provider"):
        await app.service.submit(request(provider="nope"))
    with raises_message(OptionError, "error-prompt-missing"):
        await app.service.submit(request(" "))
    with pytest.raises(InsufficientCredits):
        await app.service.submit(request(samples=4, size=(2048, 2048)))
    # Nothing was taken: /balance shows the welcome grant whole, and it is the only movement.
    assert await app.balance(ALICE) == 10
    assert [entry.kind for entry in await app.history(ALICE)] == ["initial"]


async def test_cancel_queued_and_running_jobs_refunds(app: App) -> None:
    gate = asyncio.Event()
    ScriptedProvider.behaviour = {"gate": gate}
    running = [await app.service.submit(request(user=u)) for u in (ALICE, BOB)]
    queued = await app.service.submit(request())
    await asyncio.sleep(0.05)
    assert await app.service.cancel(queued.id, ALICE.key)
    assert not await app.service.cancel(running[1].id, ALICE.key)  # not Alice's job
    assert await app.service.cancel(running[0].id, ALICE.key)
    for handle in (queued, running[0]):
        final = await handle.wait()
        assert isinstance(final, Failed) and isinstance(final.error, JobCancelled)
    gate.set()
    assert isinstance(await running[1].wait(), Done)
    assert await app.storage.balance(ALICE.key) == 10
    assert await app.storage.drift() == []


async def test_round_robin_between_users(app: App) -> None:
    gate = asyncio.Event()
    ScriptedProvider.behaviour = {"gate": gate}
    blockers = [await app.service.submit(request(user=UserRef("telegram", f"b{i}")))
                for i in range(2)]
    alice = [await app.service.submit(request()) for _ in range(3)]
    bob = await app.service.submit(request(user=BOB))
    order = await app.storage.queue_order("main")
    assert order == [alice[0].id, bob.id, alice[1].id, alice[2].id]
    last = [h.last_event for h in (*alice, bob)]
    assert [e.position if isinstance(e, Queued) else None for e in last] == [1, 3, 4, 2]
    gate.set()
    for handle in [*blockers, *alice, bob]:
        assert isinstance(await handle.wait(), Done)


async def test_queue_limits(app: App) -> None:
    app.config.limits.max_queued_per_user = 1
    gate = asyncio.Event()
    ScriptedProvider.behaviour = {"gate": gate}
    first = await app.service.submit(request())
    with raises_message(QueueFull, "error-queue-user", count=1):
        await app.service.submit(request())
    gate.set()
    await first.wait()


async def test_simultaneous_requests_of_one_user_respect_the_queue_limit(app: App) -> None:
    app.config.limits.max_queued_per_user = 3
    gate = asyncio.Event()
    ScriptedProvider.behaviour = {"gate": gate}
    outcomes = await asyncio.gather(*(app.service.submit(request()) for _ in range(10)),
                                    return_exceptions=True)
    accepted = [o for o in outcomes if isinstance(o, JobHandle)]
    assert len(accepted) == 3
    assert all(isinstance(o, QueueFull) for o in outcomes if not isinstance(o, JobHandle))
    assert await app.storage.balance(ALICE.key) == 7  # only the accepted three are reserved
    gate.set()
    for handle in accepted:
        assert isinstance(await handle.wait(), Done)


async def test_a_result_stored_through_a_database_lock_is_still_delivered(
        app: App, tmp_path: Path) -> None:
    gate = asyncio.Event()
    ScriptedProvider.behaviour = {"gate": gate}
    handle = await app.service.submit(request())
    await asyncio.sleep(0.3)  # running at the provider
    holder = sqlite3.connect(tmp_path / "bot.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another program takes the file while the job ends
    gate.set()
    await asyncio.sleep(6.5)  # longer than the busy timeout: the first write fails
    holder.rollback()
    holder.close()
    final = await asyncio.wait_for(handle.wait(), 20)
    assert isinstance(final, Done)
    job = await app.storage.get_job(handle.id)
    assert job is not None and (job.status, job.charge) == ("delivered", "committed")
    assert await app.storage.drift() == []


async def test_chat_policy_banned_word_locks_and_caps(app: App) -> None:
    await app.preferences.set_chat(GROUP, "banned_words", "add gore")
    await app.preferences.set_chat(GROUP, "steps", "12")
    await app.preferences.set_chat(GROUP, "lock", "steps")
    await app.preferences.set_chat(GROUP, "max_images", "1")
    with raises_message(PolicyError, "error-banned-word"):
        await app.service.submit(request("some GORE here", chat=GROUP))
    handle = await app.service.submit(request("a cat", chat=GROUP, steps=40, samples=3))
    assert handle.params.steps == 12 and handle.params.samples == 1
    assert en("notice-locked", name="steps", value=12) in handle.notices
    assert en("notice-chat-max-images", count=1) in handle.notices
    assert handle.params.nsfw_allowed is False
    await handle.wait()


async def test_chat_disabled_and_cooldown(app: App) -> None:
    await app.preferences.set_chat(GROUP, "cooldown", "60")
    handle = await app.service.submit(request(chat=GROUP))
    await handle.wait()
    with raises_message(PolicyError, "error-cooldown"):
        await app.service.submit(request(chat=GROUP))
    await app.preferences.set_chat(GROUP, "enabled", "off")
    with raises_message(PolicyError, "error-chat-disabled"):
        await app.service.submit(request(chat=GROUP))


async def test_user_defaults_apply_and_request_wins(app: App) -> None:
    await app.preferences.set_user(ALICE, "steps", "33")
    await app.preferences.set_user(ALICE, "strength", "0.3")
    handle = await app.service.submit(request(strength=0.9))
    assert handle.params.steps == 33 and handle.params.strength == 0.9
    await handle.wait()


async def test_style_and_forced_negative(app: App) -> None:
    await app.preferences.set_chat(GROUP, "forced_negative", "nsfw, gore")
    handle = await app.service.submit(request("a fox", chat=GROUP, style="anime",
                                              negative_prompt="blurry"))
    assert handle.params.prompt.startswith("a fox, anime style")
    assert handle.params.negative_prompt.endswith("blurry, nsfw, gore")
    await handle.wait()


async def test_two_hundred_jobs_with_failures_and_timeouts_keep_the_ledger_exact(app: App) -> None:
    ScriptedProvider.behaviour = {"failure_rate": 0.3}
    app.config.credits.initial = 1000
    app.providers["main"].settings.timeout = 0.2  # hangs become timeouts quickly
    users = [UserRef("telegram", str(i)) for i in range(20)]

    async def one(i: int) -> Any:
        user = users[i % len(users)]
        try:
            handle = await app.service.submit(request(f"job {i}", user=user))
        except QueueFull:
            return None
        if i % 17 == 0:
            await app.service.cancel(handle.id, user.key)
        return await handle.wait()

    results = await asyncio.gather(*(one(i) for i in range(200)))
    finals = [r for r in results if r is not None]
    assert len(finals) == 200
    assert any(isinstance(r, Failed) for r in finals) and any(isinstance(r, Done) for r in finals)
    assert any(isinstance(r, Failed) and isinstance(r.error, ProviderTimeout) for r in finals)
    assert await app.storage.drift() == []
    for user in users:
        balance = await app.storage.balance(user.key)
        assert balance is not None and balance >= 0
        ledger = await app.storage.ledger(user.key, 10_000)
        refunds = [e.job_id for e in ledger if e.kind == "refund"]
        assert len(refunds) == len(set(refunds))
        reserves = {e.job_id for e in ledger if e.kind == "reserve"}
        done = sum(1 for e in ledger if e.kind == "reserve") - len(refunds)
        assert balance == 1000 - done
        assert set(refunds) <= reserves
    assert app.service.active == {}


async def test_one_event_reads_the_users_settings_once(app: App,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    await app.preferences.set_user(ALICE, "steps", "33")
    await app.preferences.set_user(ALICE, "file", "on")
    reads: list[str] = []
    real = app.storage.user_settings

    async def counted(user_key: str) -> dict[str, Any]:
        reads.append(user_key)
        return await real(user_key)

    monkeypatch.setattr(app.storage, "user_settings", counted)
    with app.preferences.per_event():
        assert await app.preferences.language(ALICE) is None  # what the locale step reads
        handle = await app.service.submit(request())
        await app.preferences.set_user(ALICE, "steps", "40")  # its own write is seen
        assert (await app.preferences.user_defaults(ALICE)).steps == 40
    assert reads == [ALICE.key] and handle.params.steps == 33
    await handle.wait()
    job = await app.storage.get_job(handle.id)
    assert job is not None and job.params["prefs"] == {"file": True}  # delivery reads no more
    assert (await app.preferences.user_defaults(ALICE)).steps == 40 and len(reads) == 2


async def test_old_processed_events_are_purged_while_the_bot_runs(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.pipeline.PURGE_EVERY", 0.0)
    assert await app.storage.mark_event("telegram", "recent")
    path = app.config.storage.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO processed_events VALUES ('telegram', 'old', 0)")
        plan = " ".join(str(row[3]) for row in conn.execute(
            "EXPLAIN QUERY PLAN DELETE FROM processed_events WHERE created_at < 1"))
    assert "processed_events_age" in plan
    for _ in range(50):  # within a few heartbeats
        await asyncio.sleep(0.1)
        if await app.storage.mark_event("telegram", "old"):
            break
    else:
        raise AssertionError("the old event id was not purged")
    assert not await app.storage.mark_event("telegram", "recent")


@pytest.mark.parametrize("room", [32 * 1024 * 1024, 0], ids=["held", "beyond-the-cap"])
async def test_a_photo_is_decoded_once_per_job_and_a_damaged_one_costs_nothing(
        app: App, monkeypatch: pytest.MonkeyPatch, room: int) -> None:
    monkeypatch.setattr("bot.pipeline.PREPARED_BYTES", room)
    made: list[tuple[int, int]] = []
    real = imaging.prepare

    def counted(data: bytes, size: tuple[int, int], *args: Any) -> ImageData:
        made.append(size)
        return real(data, size, *args)

    received: list[bytes] = []
    monkeypatch.setattr(imaging, "prepare", counted)
    ScriptedProvider.behaviour = {"seen": received}
    handle = await app.service.submit(request(size=(512, 384)))
    assert isinstance(await handle.wait(), Done) and handle.prepared is None
    assert made == [(512, 384)]  # at submission (held) or when the job started (beyond it)
    assert received and imaging.image_size(received[0]) == (512, 384)
    with raises_message(ImageError, "error-image-incomplete"):
        await app.service.submit(request(image=PHOTO[: len(PHOTO) // 2]))
    assert await app.storage.balance(ALICE.key) == 9 and app.service.active == {}
