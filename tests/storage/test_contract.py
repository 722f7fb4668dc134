"""The storage contract for users, credits and settings (every backend in ``BACKENDS``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from storage import Storage
from storage.base import PurchaseRecord
from storage.errors import NotEnoughCredits
from tests.storage.jobs import claim, deliver, make, register


async def test_initial_grant_and_daily_top_up(store: Storage) -> None:
    assert await store.ensure_user("telegram:1", initial=20, daily_free=5, today="2026-01-01") == 20
    assert await store.ensure_user("telegram:1", initial=20, daily_free=5, today="2026-01-01") == 20
    assert await make(store, "a", price=12) == 8
    assert await store.ensure_user("telegram:1", initial=20, daily_free=5, today="2026-01-02") == 13
    assert await store.ensure_user("telegram:1", initial=20, daily_free=5, today="2026-01-02") == 13
    kinds = [entry.kind for entry in await store.ledger("telegram:1")]
    assert kinds == ["daily", "reserve", "initial"]
    assert await store.drift() == []


async def test_top_up_never_exceeds_initial(store: Storage) -> None:
    await store.ensure_user("telegram:1", initial=20, daily_free=5, today="2026-01-01")
    await make(store, "a", price=2)
    assert await store.ensure_user("telegram:1", initial=20, daily_free=5, today="2026-01-02") == 20


async def test_reserve_refuses_overdraft_and_records_nothing(store: Storage) -> None:
    await store.ensure_user("telegram:1", initial=3, daily_free=0, today="d")
    with pytest.raises(NotEnoughCredits) as info:
        await make(store, "a", price=5)
    assert info.value.balance == 3 and info.value.price == 5
    assert await store.get_job("a") is None
    assert await store.balance("telegram:1") == 3


async def test_refund_happens_exactly_once(store: Storage) -> None:
    await store.ensure_user("telegram:1", initial=10, daily_free=0, today="d")
    assert await make(store, "a", price=4) == 6
    assert await store.finish_job("a", "failed", error="boom") == 10
    assert await store.finish_job("a", "failed") == 10
    assert await store.finish_job("a", "cancelled") == 10
    assert not await store.confirm_delivery("a", "x", keep_results=False)
    record = await store.get_job("a")
    assert record is not None and record.status == "failed" and record.charge == "refunded"
    refunds = [e for e in await store.ledger("telegram:1") if e.kind == "refund"]
    assert len(refunds) == 1 and refunds[0].amount == 4


async def test_commit_keeps_the_charge(store: Storage) -> None:
    await store.ensure_user("telegram:1", initial=10, daily_free=0, today="d")
    await register(store)
    await make(store, "a", price=4)
    assert await claim(store) == "a"
    await deliver(store, "a")
    assert await store.balance("telegram:1") == 6
    record = await store.get_job("a")
    assert record is not None
    assert (record.status, record.charge, record.seed) == ("delivered", "committed", 7)
    assert record.metadata == {"m": 1} and record.origin == {"chat_id": 5}
    assert record.delivery_ref == "chat:1"


async def test_concurrent_reservations_never_overdraw(store: Storage) -> None:
    await store.ensure_user("telegram:1", initial=10, daily_free=0, today="d")
    results = await asyncio.gather(*(make(store, f"j{i}", price=3) for i in range(8)),
                                   return_exceptions=True)
    ok = [r for r in results if isinstance(r, int)]
    assert len(ok) == 3
    assert all(isinstance(r, NotEnoughCredits) for r in results if not isinstance(r, int))
    assert await store.balance("telegram:1") == 1
    assert await store.drift() == []


async def test_grant_and_negative_grant(store: Storage) -> None:
    assert await store.grant("discord:9", 5, "gift") == 5
    assert await store.grant("discord:9", -50, "revoke") == 0
    assert await store.drift() == []


async def test_settings_round_trip(store: Storage) -> None:
    assert await store.user_settings("telegram:1") == {}
    await store.set_user_settings("telegram:1", {"steps": 30})
    assert await store.user_settings("telegram:1") == {"steps": 30}
    await store.set_chat_settings("telegram:-5", {"banned_words": ["x"]})
    await store.set_chat_settings("telegram:-5", {"banned_words": ["y"]})
    assert await store.chat_settings("telegram:-5") == {"banned_words": ["y"]}


async def test_mark_event_is_idempotent(store: Storage) -> None:
    assert await store.mark_event("telegram", "1") is True
    assert await store.mark_event("telegram", "1") is False
    assert await store.mark_event("discord", "1") is True


async def test_usage_counts_jobs_in_chat(store: Storage) -> None:
    await store.ensure_user("telegram:1", initial=10, daily_free=0, today="d")
    await make(store, "a", price=1)
    await make(store, "b", price=1)
    await store.finish_job("b", "failed")
    usage = await store.usage("telegram:1", "telegram:-100", since=0)
    assert usage.count == 1 and usage.last_at is not None


async def test_forget_user_erases_prompts_but_keeps_ledger(store: Storage) -> None:
    await store.ensure_user("telegram:1", initial=10, daily_free=0, today="d")
    await store.set_user_settings("telegram:1", {"steps": 30})
    await register(store)
    await make(store, "a", price=1)
    await claim(store)
    await deliver(store, "a")
    assert await store.forget_user("telegram:1") == 1
    record = await store.get_job("a")
    assert record is not None and record.params == {}
    assert await store.user_settings("telegram:1") == {}
    assert len(await store.ledger("telegram:1")) == 2


async def test_stats(store: Storage) -> None:
    await store.ensure_user("telegram:1", initial=10, daily_free=0, today="d")
    await register(store)
    await make(store, "a", price=2)
    await claim(store)
    await deliver(store, "a")
    stats = await store.stats()
    assert stats["users"] == 1 and stats["credits_spent"] == 2
    assert stats["jobs"] == {"delivered": 1}


async def test_settings_another_process_writes_are_read_at_once(
        backend: Callable[[], Storage]) -> None:
    """A gateway reads what an admin's command wrote through another process, at once, and
    its own later writes too (SQLite answers these reads on a second connection)."""
    writer, reader = backend(), backend()
    await writer.open()
    await reader.open()
    try:
        assert await reader.user_settings("telegram:1") == {}
        for steps in (30, 31):
            await writer.set_user_settings("telegram:1", {"steps": steps})
            assert await reader.user_settings("telegram:1") == {"steps": steps}
        await writer.set_chat_settings("telegram:-5", {"banned_words": ["x"]})
        assert await reader.chat_settings("telegram:-5") == {"banned_words": ["x"]}
        await reader.set_user_settings("telegram:1", {"steps": 5})
        assert await reader.user_settings("telegram:1") == {"steps": 5}
        assert await writer.user_settings("telegram:1") == {"steps": 5}
    finally:
        await reader.close()
        await writer.close()


async def test_settings_before_first_request_keep_the_welcome_grant(store: Storage) -> None:
    await store.set_user_settings("telegram:1", {"defaults": {"steps": 3}})
    await store.grant("telegram:1", 2)
    assert await store.ensure_user("telegram:1", initial=20, daily_free=5, today="d") == 22
    assert await store.drift() == []


def purchase(charge: str, user: str = "telegram:1", credits: int = 100,
             price: int = 50) -> PurchaseRecord:
    return PurchaseRecord(charge_id=charge, platform=user.split(":")[0], user_key=user,
                          pack_id="small", credits=credits, currency="XTR", price=price)


async def test_a_purchase_grants_once_per_charge_id(store: Storage) -> None:
    await store.ensure_user("telegram:1", initial=10, daily_free=0, today="d")
    first = await store.record_purchase(purchase("stxA"))
    again = await store.record_purchase(purchase("stxA"))
    assert (first.granted, first.balance) == (True, 110)
    assert (again.granted, again.balance) == (False, 110)
    assert again.purchase.pack_id == "small" and again.purchase.created_at > 0
    entries = await store.ledger("telegram:1")
    assert [(e.kind, e.amount) for e in entries] == [("purchase", 100), ("initial", 10)]
    assert await store.drift() == []


async def test_concurrent_deliveries_of_one_payment_grant_once(store: Storage) -> None:
    outcomes = await asyncio.gather(*(store.record_purchase(purchase("stxB", "discord:7"))
                                      for _ in range(6)))
    assert sum(o.granted for o in outcomes) == 1
    assert await store.balance("discord:7") == 100
    assert await store.drift() == []


async def test_refund_of_a_purchase_happens_once(store: Storage) -> None:
    await store.record_purchase(purchase("stxC"))
    assert await store.refund_purchase("stxC", "pack small refunded") == 0
    assert await store.refund_purchase("stxC") is None
    assert await store.refund_purchase("unknown") is None
    stored = await store.get_purchase("stxC")
    assert stored is not None and stored.refunded_at is not None
    assert await store.get_purchase("unknown") is None
    kinds = [(e.kind, e.amount, e.note) for e in await store.ledger("telegram:1")]
    assert kinds == [("refund", -100, "pack small refunded"), ("purchase", 100, "pack small")]
    assert await store.drift() == []


async def test_a_refund_of_a_spent_pack_may_leave_a_negative_balance(store: Storage) -> None:
    await store.record_purchase(purchase("stxD", credits=10))
    await register(store)
    await make(store, "a", price=4)
    await claim(store)
    await deliver(store, "a")
    assert await store.refund_purchase("stxD") == -4
    assert await store.balance("telegram:1") == -4
    assert await store.grant("telegram:1", -3, "revoke") == -4  # nothing more to take
    with pytest.raises(NotEnoughCredits):
        await make(store, "b", price=1)
    assert await store.grant("telegram:1", 5) == 1
    assert await store.drift() == []


async def test_revenue_per_day_nets_out_refunds(store: Storage) -> None:
    await store.record_purchase(purchase("stxE", price=50))
    await store.record_purchase(purchase("stxF", "telegram:2", price=20))
    await store.record_purchase(PurchaseRecord("999", "discord", "discord:3", "small", 100,
                                               "USD", 199))
    await store.refund_purchase("stxF")
    days = await store.revenue(since=0)
    assert [(d.platform, d.currency, d.purchases, d.credits, d.price, d.refunded)
            for d in days] == [("discord", "USD", 1, 100, 199, 0),
                               ("telegram", "XTR", 2, 200, 50, 1)]
    assert len({d.day for d in days}) == 1
    assert await store.revenue(since=time.time() + 60) == []
