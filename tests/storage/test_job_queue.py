"""The storage contract for the durable job queue: claims, leases, the outbox, notices."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

import pytest

from storage import Storage
from storage.base import Grants, QueueLimits, StartHere, Stored
from storage.errors import NotEnoughCredits, QueueLimitReached
from tests.storage.jobs import LIMITS, ME, RESULT, UPLOAD, claim, deliver, job, make, register

OTHER = "instance-b"


@pytest.fixture
async def funded(store: Storage) -> Storage:
    for user in ("telegram:1", "telegram:2", "telegram:3"):
        await store.ensure_user(user, initial=20, daily_free=0, today="d")
    await register(store)
    await register(store, OTHER)
    return store


async def test_claims_take_turns_between_users(funded: Storage) -> None:
    for name in ("a1", "a2", "a3"):
        await make(funded, name, "telegram:1")
    await make(funded, "b1", "telegram:2")
    await make(funded, "c1", "telegram:3")
    order = await funded.queue_order("webui")
    taken = [await claim(funded) for _ in range(5)]
    assert taken == ["a1", "b1", "c1", "a2", "a3"] == order
    assert await claim(funded) is None


async def test_a_user_served_earlier_waits_behind_a_newcomer(funded: Storage) -> None:
    await make(funded, "a1", "telegram:1")
    await make(funded, "a2", "telegram:1")
    assert await claim(funded) == "a1"
    await make(funded, "b1", "telegram:2")
    assert await funded.queue_order("webui") == ["a2", "b1"]  # b1 came after a1 started
    await make(funded, "c1", "telegram:3")
    assert [await claim(funded) for _ in range(3)] == ["a2", "b1", "c1"]


async def test_provider_slots_are_counted_over_every_instance(funded: Storage) -> None:
    for index in range(3):
        await make(funded, f"j{index}", f"telegram:{index + 1}")
    assert await claim(funded, limit=2) == "j0"
    assert await claim(funded, instance=OTHER, limit=2) == "j1"
    assert await claim(funded, limit=2) is None
    assert await claim(funded, instance=OTHER, limit=2) is None
    await funded.finish_job("j0", "failed")
    assert await claim(funded, instance=OTHER, limit=2) == "j2"
    assert await claim(funded, provider="other") is None


async def test_a_claim_carries_the_upload_and_counts_the_attempt(funded: Storage) -> None:
    await make(funded, "a")
    taken = await funded.claim_job(ME, "webui", limit=1, platforms=["telegram"], lease=30)
    assert taken is not None and taken.upload == UPLOAD
    assert (taken.job.status, taken.job.owner, taken.job.attempts) == ("running", ME, 1)


async def test_claims_respect_platforms_and_affinity(funded: Storage) -> None:
    await make(funded, "pinned", affinity=ME)
    await make(funded, "discord", "discord:1", price=0)
    assert await funded.claim_job(OTHER, "webui", limit=9, platforms=["telegram"],
                                  lease=30) is None
    assert await claim(funded) == "pinned"
    assert await claim(funded) is None  # no discord courier in this instance
    taken = await funded.claim_job(OTHER, "webui", limit=9, platforms=["discord"], lease=30)
    assert taken is not None and taken.job.id == "discord"


async def test_the_charge_commits_only_on_confirmed_delivery(funded: Storage) -> None:
    await make(funded, "a", price=3)
    await claim(funded)
    assert not await funded.store_result("a", OTHER, [RESULT], seed=1, metadata={},
                                         deadline=1e12)  # not the owner
    await funded.grant("telegram:1", 5)  # a purchase while the job ran: the caption shows it
    assert await funded.store_result("a", ME, [RESULT, RESULT], seed=1, metadata={},
                                     deadline=1e12) == Stored(balance=20 - 3 + 5)
    record = await funded.get_job("a")
    assert record is not None and (record.status, record.charge) == ("generated", "held")
    assert await funded.results("a") == [RESULT, RESULT]
    assert await funded.confirm_delivery("a", "m:1", keep_results=False)
    assert not await funded.confirm_delivery("a", "m:2", keep_results=False)
    record = await funded.get_job("a")
    assert record is not None and (record.status, record.charge) == ("delivered", "committed")
    assert record.delivery_ref == "m:1" and await funded.results("a") == []
    assert [e.kind for e in await funded.ledger("telegram:1")] == ["grant", "reserve", "initial"]
    assert await funded.drift() == []


async def test_refused_delivery_waits_in_the_outbox(funded: Storage) -> None:
    await make(funded, "a")
    await claim(funded)
    await funded.store_result("a", ME, [RESULT], seed=1, metadata={}, deadline=1e12)
    assert await funded.claim_deliveries(OTHER, ["telegram"], lease=30) == []  # ME holds it
    await funded.delivery_failed("a", retry_at=0)
    [due] = await funded.claim_deliveries(OTHER, ["telegram"], lease=30)
    assert (due.id, due.owner, due.delivery_attempts) == ("a", OTHER, 1)
    assert await funded.claim_deliveries(ME, ["telegram"], lease=30) == []  # OTHER holds it
    await funded.delivery_failed("a", retry_at=1e12)
    assert await funded.claim_deliveries(ME, ["telegram"], lease=30) == []  # not due yet
    assert await funded.confirm_delivery("a", "m", keep_results=True)
    assert await funded.results("a") == [RESULT]
    await funded.purge(results_before=1e12, events_before=0)
    assert await funded.results("a") == []


async def test_undelivered_results_expire_with_a_refund_and_a_notice(funded: Storage) -> None:
    await make(funded, "a", price=4)
    await claim(funded)
    await funded.store_result("a", ME, [RESULT], seed=1, metadata={}, deadline=0)
    await funded.delivery_failed("a", retry_at=1e12)
    assert await funded.expire_undelivered() == ["a"]
    assert await funded.expire_undelivered() == []
    record = await funded.get_job("a")
    assert record is not None
    assert (record.status, record.charge, record.notice) == ("expired", "refunded", "expired")
    assert await funded.balance("telegram:1") == 20
    assert await funded.results("a") == []
    assert await funded.drift() == []


async def test_a_dead_owners_job_runs_again_then_is_refunded(funded: Storage) -> None:
    await register(funded, "mortal", lease=0.05)
    await make(funded, "a", price=2)
    await claim(funded, instance="mortal", lease=0.05)
    assert (await funded.recover_expired(max_attempts=2)).requeued == ()  # still alive
    await asyncio.sleep(0.1)
    recovery = await funded.recover_expired(max_attempts=2)
    assert recovery.requeued == ("a",)
    record = await funded.get_job("a")
    assert record is not None and (record.status, record.notice) == ("queued", "requeued")
    await claim(funded, instance="mortal", lease=0.05)
    await asyncio.sleep(0.1)
    recovery = await funded.recover_expired(max_attempts=2)
    assert recovery.refunded == ("a",)
    record = await funded.get_job("a")
    assert record is not None
    assert (record.status, record.charge, record.notice) == ("failed", "refunded", "refunded")
    assert await funded.balance("telegram:1") == 20
    assert await funded.drift() == []


async def test_a_heartbeat_keeps_jobs_and_brings_cancels(funded: Storage) -> None:
    await register(funded, "alive", lease=0.2)
    await make(funded, "a")
    await claim(funded, instance="alive", lease=0.2)
    for _ in range(4):
        await asyncio.sleep(0.08)
        assert await funded.heartbeat("alive", lease=0.2) == []
        assert (await funded.recover_expired(max_attempts=2)).requeued == ()
    assert await funded.request_cancel("a", "telegram:2") is None  # not theirs
    assert await funded.request_cancel("a", "telegram:1") == "requested"
    assert await funded.heartbeat("alive", lease=0.2) == ["a"]


async def test_cancelling_a_queued_job_refunds_it_at_once(funded: Storage) -> None:
    await make(funded, "a", price=5)
    latest = await funded.latest_active("telegram:1")
    assert latest is not None and latest.id == "a"
    assert await funded.request_cancel("a") == "cancelled"
    assert await funded.request_cancel("a") is None
    assert await funded.balance("telegram:1") == 20
    assert await funded.latest_active("telegram:1") is None
    assert await claim(funded) is None


async def test_a_clean_stop_hands_jobs_back_without_counting_an_attempt(funded: Storage) -> None:
    await make(funded, "shared")
    await make(funded, "pinned", affinity=ME)
    await claim(funded)
    await claim(funded)
    await funded.retire_instance(ME)
    shared, pinned = await funded.get_job("shared"), await funded.get_job("pinned")
    assert shared is not None and (shared.status, shared.attempts) == ("queued", 0)
    assert pinned is not None and (pinned.status, pinned.charge) == ("failed", "refunded")
    assert await funded.drift() == []


async def test_notices_are_taken_once_per_lease(funded: Storage) -> None:
    await make(funded, "a")
    await funded.finish_job("a", "failed", notice="refunded")
    [owed] = await funded.take_notices(["telegram"], lease=30)
    assert owed.id == "a" and owed.notice == "refunded"
    assert await funded.take_notices(["telegram"], lease=30) == []
    assert await funded.take_notices(["discord"], lease=30) == []
    await funded.mark_notified("a")
    record = await funded.get_job("a")
    assert record is not None and record.notice is None


async def test_origin_updates_merge(funded: Storage) -> None:
    await make(funded, "a")
    await funded.set_origin("a", {"status_message_id": 42})
    record = await funded.get_job("a")
    assert record is not None and record.origin == {"chat_id": 5, "status_message_id": 42}


async def test_the_origin_secret_is_dropped_when_the_job_ends(funded: Storage) -> None:
    for name in ("delivered", "failed", "cancelled"):
        await funded.create_job(replace(job(name), origin={"chat_id": 5, "secret": {"t": "x"}}),
                                upload=UPLOAD, limits=LIMITS)
    assert await claim(funded) == "delivered"
    running = await funded.get_job("delivered")
    assert running is not None and running.origin["secret"] == {"t": "x"}
    await deliver(funded, "delivered")
    assert await claim(funded) == "failed"
    await funded.finish_job("failed", "failed", error="JobFailed")
    assert await funded.request_cancel("cancelled") == "cancelled"
    for name in ("delivered", "failed", "cancelled"):
        record = await funded.get_job(name)
        assert record is not None and record.origin == {"chat_id": 5}, name


async def test_queue_limits_hold_under_simultaneous_requests(funded: Storage) -> None:
    limits = QueueLimits(total=100, per_user=3)
    results = await asyncio.gather(
        *(funded.create_job(job(f"j{i}", price=1), upload=UPLOAD, limits=limits)
          for i in range(10)), return_exceptions=True)
    assert sum(isinstance(r, int) for r in results) == 3
    refused = [r for r in results if isinstance(r, QueueLimitReached)]
    assert len(refused) == 7 and all(r.scope == "user" for r in refused)
    with pytest.raises(QueueLimitReached) as info:
        await funded.create_job(job("x", "telegram:2"), upload=UPLOAD,
                                limits=QueueLimits(total=3, per_user=3))
    assert info.value.scope == "total"
    assert await funded.active_jobs() == 3
    assert await funded.balance("telegram:1") == 17


async def test_the_total_queue_limit_holds_for_simultaneous_users(store: Storage) -> None:
    for user in range(12):
        await store.ensure_user(f"telegram:{user}", initial=5, daily_free=0, today="d")
    limits = QueueLimits(total=3, per_user=3)
    results = await asyncio.gather(
        *(store.create_job(job(f"j{u}", f"telegram:{u}"), upload=UPLOAD, limits=limits)
          for u in range(12)), return_exceptions=True)
    assert sum(isinstance(r, int) for r in results) == 3
    refused = [r for r in results if isinstance(r, QueueLimitReached)]
    assert len(refused) == 9 and all(r.scope == "total" for r in refused)
    assert await store.active_jobs() == 3 and await store.drift() == []


async def test_two_connections_never_exceed_the_slots(backend: Callable[[], Storage]) -> None:
    first, second = backend(), backend()
    await first.open()
    await second.open()
    try:
        for user in range(6):
            await first.ensure_user(f"telegram:{user}", initial=5, daily_free=0, today="d")
            await first.create_job(job(f"j{user}", f"telegram:{user}"), upload=UPLOAD,
                                   limits=LIMITS)
        claims = await asyncio.gather(*(
            store.claim_job(name, "webui", limit=2, platforms=["telegram"], lease=30)
            for store, name in [(first, "a"), (second, "b")] * 4))
        assert sum(c is not None for c in claims) == 2
        statuses = await first.job_statuses([f"j{u}" for u in range(6)])
        assert sorted(statuses.values()) == ["queued"] * 4 + ["running"] * 2
        taken = next(c for c in claims if c is not None)
        await deliver(first if taken.job.owner == "a" else second, taken.job.id,
                      instance=taken.job.owner or "")
    finally:
        await first.close()
        await second.close()


HERE = StartHere(ME, limit=2, platforms=("telegram",), lease=30.0)


async def test_a_job_starts_in_the_transaction_that_stores_it_only_when_it_is_due(
        funded: Storage) -> None:
    created = await funded.create_started_job(job("a", price=3), upload=UPLOAD, limits=LIMITS,
                                              start=HERE, event=("telegram", "u1"))
    assert created.balance == 17 and created.claim is not None
    assert created.claim.upload == UPLOAD and not created.claim.more
    started = created.claim.job
    assert (started.id, started.status, started.owner, started.attempts) == \
        ("a", "running", ME, 1)
    # Queued ahead of it: the newcomer waits for its turn.
    await make(funded, "b", "telegram:2")
    waits = await funded.create_started_job(job("c", "telegram:3"), upload=UPLOAD,
                                            limits=LIMITS, start=HERE)
    assert waits.claim is None and waits.balance == 18
    assert await claim(funded) == "b"
    # Both slots (counted over every process) taken: it waits too.
    late = await funded.create_started_job(job("d", "telegram:3"), upload=UPLOAD,
                                           limits=LIMITS, start=HERE)
    assert late.claim is None
    assert await funded.job_statuses(["a", "b", "c", "d"]) == {
        "a": "running", "b": "running", "c": "queued", "d": "queued"}
    await deliver(funded, "a")
    assert await funded.balance("telegram:1") == 17
    assert [(e.kind, e.amount) for e in await funded.ledger("telegram:1")
            if e.job_id == "a"] == [("reserve", -3)]  # charged once, committed on delivery
    assert await funded.drift() == []


async def test_a_job_started_as_it_was_stored_survives_its_process_and_is_charged_once(
        funded: Storage) -> None:
    await register(funded, "mortal", lease=0.05)
    created = await funded.create_started_job(
        job("a", price=2), upload=UPLOAD, limits=LIMITS,
        start=StartHere("mortal", limit=2, platforms=("telegram",), lease=0.05))
    assert created.claim is not None and created.balance == 18
    await asyncio.sleep(0.1)  # the process died: no heartbeat
    assert (await funded.recover_expired(max_attempts=2)).requeued == ("a",)
    assert await claim(funded) == "a"  # its upload is stored with it
    await deliver(funded, "a")
    assert await funded.balance("telegram:1") == 18
    assert [e.kind for e in await funded.ledger("telegram:1") if e.job_id == "a"] == ["reserve"]
    assert await funded.drift() == []


@pytest.mark.parametrize("started", [False, True])
async def test_a_job_stored_with_grants_gives_the_users_free_credits_first(
        store: Storage, started: bool) -> None:
    await register(store)
    grants = Grants(initial=10, daily_free=3, today="d1")
    first = job("a", "telegram:9", price=4)
    if started:
        made = await store.create_started_job(
            first, upload=UPLOAD, limits=LIMITS, grants=grants,
            start=StartHere(ME, 4, ("telegram",), 30.0))
        assert made.claim is not None
        balance = made.balance
    else:
        balance = await store.create_job(first, upload=UPLOAD, limits=LIMITS, grants=grants)
    assert balance == 6  # the welcome grant, then the reservation, in one transaction
    await store.create_job(job("b", "telegram:9", price=4), upload=UPLOAD, limits=LIMITS,
                           grants=grants)  # the same day: no second grant
    assert await store.balance("telegram:9") == 2
    await store.create_job(job("c", "telegram:9", price=1), upload=UPLOAD, limits=LIMITS,
                           grants=replace(grants, today="d2"))
    kinds = [entry.kind for entry in reversed(await store.ledger("telegram:9", 10))]
    assert kinds == ["initial", "reserve", "reserve", "daily", "reserve"]
    assert await store.balance("telegram:9") == 2 + 3 - 1
    assert await store.drift() == []


async def test_a_job_refused_for_credits_leaves_no_grant_behind(
        store: Storage) -> None:
    with pytest.raises(NotEnoughCredits):
        await store.create_job(job("a", "telegram:8", price=50), upload=UPLOAD, limits=LIMITS,
                               grants=Grants(initial=10, daily_free=0, today="d1"))
    assert await store.balance("telegram:8") is None  # rolled back with the refusal
