"""A role only one process may play at a time, held through a named lease in storage.

The Telegram long poller is the one such role: two processes calling getUpdates at once
answer each other with 409 Conflict. Every gateway runs ``hold_exclusively``; the one that
takes the lease plays the role and renews it every heartbeat, the others wait on standby and
take over once it is dropped (a clean stop) or has run out (a process that died).

A lease row beats a PostgreSQL advisory lock here: it works the same on SQLite, and a holder
cut off from the database knows when its lease ends and stops first, where a session lock
would be released by the server while the holder still plays the role. The price is that
the processes' clocks must agree (NTP) to well within the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from bot.errors import StorageUnavailable
from storage import Storage

log = logging.getLogger(__name__)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), max(seconds, 0.0))


async def _take(storage: Storage, name: str, holder: str, ttl: float) -> bool | None:
    """True: held for ``ttl`` from now; False: another holds it; None: the database is down."""
    try:
        return await storage.take_lease(name, holder, ttl=ttl)
    except StorageUnavailable:
        return None  # the outage is logged by storage; try again next beat


async def _keep(storage: Storage, name: str, holder: str, *, ttl: float, beat: float,
                stop: asyncio.Event, lost: asyncio.Event) -> None:
    """Renew every ``beat`` until ``stop``; set ``lost`` once the lease may be another's."""
    held_until = time.time() + ttl
    while not stop.is_set():
        await _wait(stop, beat)
        if stop.is_set():
            return
        started = time.time()
        taken = await _take(storage, name, holder, ttl)
        if taken:
            held_until = started + ttl
        elif taken is False:  # another process took it: this one overslept its lease
            lost.set()
            return
        # A renewal that cannot get through in time: give the role up before the lease ends,
        # so that the next holder never overlaps with this one.
        if time.time() + beat >= held_until:
            lost.set()
            return


async def hold_exclusively(storage: Storage, name: str, holder: str, *, ttl: float,
                           beat: float, stop: asyncio.Event,
                           body: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``body(until)`` whenever this process holds lease ``name``, until ``stop``.

    ``until`` is set when ``stop`` is or the lease is lost; ``body`` must then return. A lost
    lease sends this process back to standby; on ``stop`` the lease is dropped for the next.
    """
    waiting_logged = False
    while not stop.is_set():
        if not await _take(storage, name, holder, ttl):
            if not waiting_logged:
                log.info("%s: another process holds it; standing by", name)
                waiting_logged = True
            await _wait(stop, beat)
            continue
        waiting_logged = False
        log.info("%s: this process took the lease", name)
        lost = asyncio.Event()
        until = asyncio.Event()
        keeper = asyncio.create_task(_keep(storage, name, holder, ttl=ttl, beat=beat,
                                           stop=stop, lost=lost), name=f"lease-{name}")
        relay = asyncio.create_task(_either(stop, lost, until), name=f"lease-{name}-relay")
        try:
            await body(until)
        finally:
            relay.cancel()
            keeper.cancel()
            await asyncio.gather(relay, keeper, return_exceptions=True)
        if lost.is_set():
            log.warning("%s: the lease was lost (database unreachable or clocks apart); "
                        "standing by", name)
            continue
        with contextlib.suppress(StorageUnavailable):
            await storage.drop_lease(name, holder)
        return


async def _either(first: asyncio.Event, second: asyncio.Event, then: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        then.set()
    finally:
        for wait in waits:
            wait.cancel()
