"""A job in flight: its parameters, its event stream and its cancel switch."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from bot.events import FINAL, Detached, Done, Failed, JobEvent, Progress
from bot.models import ChatRef, ImageData, Params, UserRef
from bot.options import Overrides


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """What an adapter hands the core: who, where, the upload and what they asked."""

    user: UserRef
    chat: ChatRef
    image: bytes
    prompt: str
    overrides: Overrides = field(default_factory=Overrides)
    origin: dict[str, Any] = field(default_factory=dict)
    # The platform event asking (an update id): recorded as handled with the job itself.
    event_id: str | None = None


class JobHandle:
    """A job this process follows (it accepted or runs it); ``events()`` replays then
    follows it. The job itself lives in storage: this is only its local event stream."""

    def __init__(self, job_id: str, user: UserRef, chat: ChatRef, origin: dict[str, Any],
                 params: Params, price: int, notices: tuple[str, ...],
                 balance: int | None) -> None:
        self.id = job_id
        self.user = user
        self.chat = chat
        self.origin = origin
        self.params = params
        self.price = price
        self.notices = notices
        self.balance_after_reserve = balance
        # The provider's input, made while the upload was checked; taken when the job starts.
        self.prepared: ImageData | None = None
        self.created = time.monotonic()
        self.cancel_requested = False
        self._events: list[JobEvent] = []
        self._waiters: set[asyncio.Future[None]] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def final(self) -> Done | Failed | Detached | None:
        last = self._events[-1] if self._events else None
        return last if isinstance(last, FINAL) else None

    @property
    def last_event(self) -> JobEvent | None:
        return self._events[-1] if self._events else None

    def emit(self, event: JobEvent) -> None:
        if self.final is not None:
            return
        self._events.append(event)
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def events(self) -> AsyncIterator[JobEvent]:
        """Every event so far, then each new one, ending with Done or Failed.

        A consumer that falls behind skips stale progress: of several progress events in a
        row it gets the latest.
        """
        index = 0
        while True:
            if index >= len(self._events):
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.add(waiter)
                try:
                    await waiter
                finally:
                    self._waiters.discard(waiter)
                continue
            pending = self._events[index:]
            index += len(pending)
            for position, event in enumerate(pending):
                following = pending[position + 1] if position + 1 < len(pending) else None
                if isinstance(event, Progress) and isinstance(following, Progress):
                    continue
                yield event
                if isinstance(event, FINAL):
                    return

    async def wait(self) -> Done | Failed | Detached:
        """The final event."""
        async for event in self.events():
            if isinstance(event, FINAL):
                return event
        final = self.final
        assert final is not None
        return final

    def attach(self, task: asyncio.Task[None] | None) -> None:
        self._task = task

    def cancel(self) -> bool:
        """Ask for cancellation; True if the job had not finished."""
        if self.final is not None:
            return False
        self.cancel_requested = True
        if self._task is not None:
            self._task.cancel()
        return True
