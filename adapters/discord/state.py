"""What the adapter keeps on the bot: the app and the jobs whose messages it is updating."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import discord

from adapters.discord.stored import AnyInteraction
from bot.app import App
from bot.i18n import render

log = logging.getLogger(__name__)


class LiveJobs:
    """Jobs being shown on Discord (their replies carry the results), so a shutdown can tell
    their users that they continue after the restart."""

    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.replies: dict[str, Any] = {}  # job id -> delivery.Reply
        self.stopping = False

    @contextlib.contextmanager
    def showing(self, job_id: str, reply: Any) -> Iterator[None]:
        task = asyncio.current_task()
        if task is not None:
            self.tasks[job_id] = task
        self.replies[job_id] = reply
        try:
            yield
        finally:
            self.tasks.pop(job_id, None)
            self.replies.pop(job_id, None)

    async def stop(self, app: App, timeout: float = 10.0) -> None:
        """Stop showing jobs: each reply says the job goes on after the restart (the jobs
        themselves go back to the queue when the service stops)."""
        self.stopping = True
        app.service.unregister_courier("discord")
        replies = list(self.replies.values())
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if replies:
            done, late = await asyncio.wait(
                [asyncio.ensure_future(r.final(content=render("restarting", r.locale), view=None))
                 for r in replies],
                timeout=timeout)
            for task in done:
                task.exception()  # a reply that can no longer be edited is fine
            if late:
                log.warning("%d discord message(s) not updated before shutdown", len(late))


def app_of(interaction: AnyInteraction) -> App:
    """The ``App`` held by the client that answers ``interaction``."""
    app = getattr(interaction.client, "app", None)
    if not isinstance(app, App):
        raise RuntimeError("this client was not built by adapters.discord.client")
    return app


def live_of(client: discord.Client) -> LiveJobs:
    live = getattr(client, "live", None)
    if not isinstance(live, LiveJobs):
        raise RuntimeError("this client was not built by adapters.discord.client")
    return live


async def first_time(interaction: discord.Interaction[Any]) -> bool:
    """Claim the interaction; False when Discord delivered it before (already answered)."""
    return await app_of(interaction).service.first_time("discord", str(interaction.id))
