"""A job in flight: its parameters, its event stream and its cancel switch."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.events import FINAL, Done, Failed, JobEvent, Progress
from bot.models import ChatRef, Params, UserRef
from bot.options import Overrides

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """What an adapter hands the core: who, where, the upload and what they asked."""

    user: UserRef
    chat: ChatRef
    image: bytes
    prompt: str
    overrides: Overrides = field(default_factory=Overrides)
    origin: dict[str, Any] = field(default_factory=dict)


class JobHandle:
    """Returned by ``GenerationService.submit``; ``events()`` replays then follows the job."""

    def __init__(self, job_id: str, request: GenerationRequest, params: Params, price: int,
                 notices: tuple[str, ...], balance: int | None) -> None:
        self.id = job_id
        self.user = request.user
        self.chat = request.chat
        self.origin = request.origin
        self.params = params
        self.price = price
        self.notices = notices
        self.balance_after_reserve = balance
        self.created = time.monotonic()
        self.image: bytes = request.image  # compressed upload; dropped once prepared
        self.spooled: Path | None = None  # the upload's file while it waits on disk
        self.cancel_requested = False
        self._events: list[JobEvent] = []
        self._waiters: set[asyncio.Future[None]] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def final(self) -> Done | Failed | None:
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

    async def wait(self) -> Done | Failed:
        """The final event."""
        async for event in self.events():
            if isinstance(event, Done | Failed):
                return event
        final = self.final
        assert final is not None
        return final

    def attach(self, task: asyncio.Task[None]) -> None:
        self._task = task

    def cancel(self) -> bool:
        """Ask for cancellation; True if the job had not finished."""
        if self.final is not None:
            return False
        self.cancel_requested = True
        if self._task is not None:
            self._task.cancel()
        return True


class UploadSpool:
    """Holds the uploads of jobs that have not started: in memory up to ``budget`` bytes in
    all, in files beyond it, so a long queue of large photos does not fill the RAM."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.in_memory = 0
        self._counted: dict[str, int] = {}
        self._folder: Path | None = None

    async def hold(self, handle: JobHandle) -> None:
        """Count a queued job's upload; beyond the budget, move it to a file.

        The job is already queued: if it starts while its file is written, it keeps the bytes
        it has and the file is removed.
        """
        size = len(handle.image)
        spill = self.in_memory + size > self.budget
        self.in_memory += size
        self._counted[handle.id] = size
        if not spill:
            return
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="img2img-uploads-"))
        path = self._folder / f"{handle.id}.upload"
        try:
            await asyncio.to_thread(path.write_bytes, handle.image)
        except OSError as exc:
            log.warning("cannot spool an upload to %s (%s); keeping it in memory",
                        self._folder, exc.strerror)
            return
        if handle.id not in self._counted:  # taken or released while it was being written
            await asyncio.to_thread(path.unlink, missing_ok=True)
            return
        self.in_memory -= self._counted.pop(handle.id)
        handle.spooled, handle.image = path, b""

    async def take(self, handle: JobHandle) -> bytes:
        """The upload of a job that starts now; its file, if any, is removed."""
        self.in_memory -= self._counted.pop(handle.id, 0)
        if handle.spooled is None:
            return handle.image
        data = await asyncio.to_thread(_read_and_remove, handle.spooled)
        handle.spooled = None
        return data

    def release(self, handle: JobHandle) -> None:
        """Forget the upload of a job that ends without being taken (cancelled, stopped)."""
        self.in_memory -= self._counted.pop(handle.id, 0)
        handle.image = b""
        if handle.spooled is not None:
            handle.spooled.unlink(missing_ok=True)
            handle.spooled = None

    def close(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


def _read_and_remove(path: Path) -> bytes:
    data = path.read_bytes()
    path.unlink(missing_ok=True)
    return data
