"""Following jobs in the chat: their events become status changes on a platform's ``Surface``.

One ``Following`` per platform adapter keeps the jobs this process shows, so its courier can
hold a status back when the result goes out first, and so a shutdown stops them all, each
status then saying that the job goes on after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from bot.events import Detached, Done, Failed, JobEvent, Progress, Queued, Started
from bot.jobs import JobHandle
from bot.presenter import position_worth_showing, restarting, status_line
from bot.status import Status, Surface

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

NOTICE_TIMEOUT = 5.0  # a shutdown waits this long for a status to say "restarting"


class Following:
    """The jobs ``platform``'s adapter shows in this process, with their statuses, timed by
    the platform's config section (``status_after``, ``progress_interval``)."""

    def __init__(self, app: App, platform: str) -> None:
        self.app = app
        self.platform = platform
        section = getattr(app.config, platform, None)
        self.interval: float = section.progress_interval if section is not None else 2.0
        self.after: float = section.status_after if section is not None else 1.0
        self.stopping = False
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._statuses: dict[str, Status] = {}
        self._started: set[asyncio.Task[None]] = set()

    def start(self, handle: JobHandle, surface: Surface, *, notices: tuple[str, ...] = (),
              shown: bool = False) -> None:
        """Follow ``handle`` in a task of its own (nothing once shutdown began)."""
        if self.stopping:
            return
        task = asyncio.create_task(self._logged(self.follow(handle, surface, notices=notices,
                                                            shown=shown)),
                                   name=f"{self.platform}-follow-{handle.id}")
        self._started.add(task)
        task.add_done_callback(self._started.discard)

    async def follow(self, handle: JobHandle, surface: Surface, *,
                     notices: tuple[str, ...] = (), shown: bool = False) -> None:
        """Show the job's events on ``surface`` until it ends; the result itself is sent by
        the courier (which holds the status first)."""
        status = Status(surface, interval=self.interval, after=self.after,
                        notices=notices + handle.notices, shown=shown,
                        on_sent=lambda ref: self.app.service.remember_status(handle.id, ref))
        if (task := asyncio.current_task()) is not None:
            self._tasks[handle.id] = task
        self._statuses[handle.id] = status
        action: asyncio.Task[None] | None = None
        shown_position: int | None = None
        try:
            async for event in handle.events():
                busy = isinstance(event, Started | Progress)
                if busy and action is None and surface.action_every is not None:
                    action = asyncio.create_task(self._act(surface, surface.action_every))
                elif not busy:
                    await _stop(action)
                    action = None
                if isinstance(event, Queued):
                    if not position_worth_showing(shown_position, event.position):
                        continue  # a small step in the queue is not worth a change
                    shown_position = event.position
                await _show(status, event)
        except asyncio.CancelledError:
            if handle.final is None and status.shown and not status.gone:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(NOTICE_TIMEOUT):
                        status.interval = 0
                        await status.finish(restarting())
            raise
        finally:
            if self._statuses.get(handle.id) is status:
                del self._statuses[handle.id]
                self._tasks.pop(handle.id, None)
            await _stop(action)
            await status.close()

    async def hold(self, job_id: str) -> None:
        """The result of ``job_id`` is being sent: its status changes no more."""
        status = self._statuses.get(job_id)
        if status is not None:
            await status.hold()

    def surface(self, job_id: str) -> Surface | None:
        """Where this process shows ``job_id``, if it does."""
        status = self._statuses.get(job_id)
        return status.surface if status is not None else None

    async def stop(self) -> None:
        """Stop showing jobs (they go back to the queue when the service stops): the courier
        goes, and each status says the job goes on after the restart."""
        self.stopping = True
        self.app.service.unregister_courier(self.platform)
        tasks = [*self._tasks.values(), *self._started]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _act(self, surface: Surface, every: float) -> None:
        """The chat action once generation has lasted ``after``, renewed until cancelled."""
        await asyncio.sleep(self.after)
        while True:
            await surface.act()
            await asyncio.sleep(every)

    async def _logged(self, follow: Coroutine[Any, Any, None]) -> None:
        """A follow-up's unexpected error is logged here: nobody awaits the task."""
        try:
            await follow
        except Exception:
            log.exception("showing a job on %s failed", self.platform)


async def _show(status: Status, event: JobEvent) -> None:
    if isinstance(event, Done):
        await status.remove()
    elif isinstance(event, Failed):
        await status.finish(status_line(event))
    elif isinstance(event, Detached):
        if event.notice:
            await status.finish(event.notice)
        else:
            await status.close()
    else:
        status.update(status_line(event))


async def _stop(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
