"""What the adapter keeps on the bot: the app and the jobs whose messages it is updating."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import discord

from bot.app import App

log = logging.getLogger(__name__)


class LiveJobs:
    """Jobs being shown on Discord, so a shutdown can stop them and tell their users."""

    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.stopping = False

    @contextlib.contextmanager
    def showing(self, job_id: str) -> Iterator[None]:
        task = asyncio.current_task()
        if task is not None:
            self.tasks[job_id] = task
        try:
            yield
        finally:
            self.tasks.pop(job_id, None)

    async def stop(self, app: App, timeout: float = 10.0) -> None:
        """Cancel (and so refund) every job still shown, and wait until each message says so."""
        self.stopping = True
        tasks = list(self.tasks.values())
        for job_id in list(self.tasks):
            await app.service.cancel(job_id)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=timeout)
            if late:
                log.warning("%d discord message(s) not updated before shutdown", len(late))


def app_of(interaction: discord.Interaction[Any]) -> App:
    """The ``App`` held by the bot that received ``interaction``."""
    app = getattr(interaction.client, "app", None)
    if not isinstance(app, App):
        raise RuntimeError("this client was not built by adapters.discord.build_bot")
    return app


def live_of(client: discord.Client) -> LiveJobs:
    live = getattr(client, "live", None)
    if not isinstance(live, LiveJobs):
        raise RuntimeError("this client was not built by adapters.discord.build_bot")
    return live


async def first_time(interaction: discord.Interaction[Any]) -> bool:
    """Claim the interaction; False when Discord delivered it before (already answered)."""
    return await app_of(interaction).storage.mark_event("discord", str(interaction.id))
