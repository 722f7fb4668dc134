"""The storage contract for named leases: one holder at a time, over every process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from storage import Storage


async def test_one_holder_at_a_time_until_its_lease_runs_out(store: Storage) -> None:
    assert await store.take_lease("telegram-poller", "a", ttl=0.5)
    assert not await store.take_lease("telegram-poller", "b", ttl=0.5)
    assert await store.take_lease("telegram-poller", "a", ttl=0.5)  # renewed
    assert await store.take_lease("other-role", "b", ttl=0.5)  # leases are per name
    await asyncio.sleep(0.7)
    assert await store.take_lease("telegram-poller", "b", ttl=5)
    assert not await store.take_lease("telegram-poller", "a", ttl=5)  # a lost it


async def test_a_dropped_lease_is_free_at_once_and_only_its_holder_drops_it(
        store: Storage) -> None:
    assert await store.take_lease("telegram-poller", "a", ttl=60)
    await store.drop_lease("telegram-poller", "b")  # not b's: nothing happens
    assert not await store.take_lease("telegram-poller", "b", ttl=60)
    await store.drop_lease("telegram-poller", "a")
    assert await store.take_lease("telegram-poller", "b", ttl=60)


async def test_simultaneous_takers_in_separate_processes_get_one_winner(
        backend: Callable[[], Storage]) -> None:
    stores = [backend() for _ in range(4)]
    for store in stores:
        await store.open()
    try:
        for _ in range(5):
            taken = await asyncio.gather(*(store.take_lease("race", f"h{i}", ttl=0.2)
                                           for i, store in enumerate(stores)))
            assert sum(taken) == 1, taken
            await asyncio.sleep(0.3)
    finally:
        for store in stores:
            await store.close()
