"""Each platform event handled once, though the platform may deliver it twice.

An event that may ask for a job is recorded in the transaction that creates its job
(``PENDING`` hands its id to the request, which sets ``recorded``), or after its handler when
none was made: a process killed in between leaves it unrecorded, and the platform's redelivery
makes the job. Any other event is recorded before its handler, so that a command with an
effect (a grant) is never run twice.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

from bot.errors import StorageUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(slots=True)
class PendingEvent:
    """An event that may ask for a job; ``recorded`` once the job's creation recorded it."""

    event_id: str
    recorded: bool = False


PENDING: ContextVar[PendingEvent | None] = ContextVar("pending_event", default=None)


async def once(first_time: Callable[[str, str], Awaitable[bool]], platform: str, event_id: str,
               handle: Callable[[], Awaitable[T]], *, may_make_job: bool) -> T | None:
    """Run ``handle`` unless the event was handled before (then None); ``first_time`` claims
    an event id in storage."""
    if may_make_job:
        pending = PendingEvent(event_id)
        token = PENDING.set(pending)
        try:
            return await handle()
        finally:
            PENDING.reset(token)
            if not pending.recorded:
                with contextlib.suppress(StorageUnavailable):
                    await first_time(platform, event_id)
    try:
        seen = not await first_time(platform, event_id)
    except StorageUnavailable:
        # The handler meets the same outage and tells the user; dropping the event here
        # would leave them with no answer at all.
        seen = False
    if seen:
        log.info("%s event %s was already processed; skipped", platform, event_id)
        return None
    return await handle()
