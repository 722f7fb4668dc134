"""Delivery on Discord, from whichever process runs the job: through the interaction's reply
(the live one where this process received it, else its stored webhook while the token is
valid), else a channel message with the bot token that mentions the requester."""

from __future__ import annotations

import asyncio
import logging

import discord

from adapters.discord.delivery import Reply, follow, refusal, show_result
from adapters.discord.state import live_of
from adapters.discord.stored import stored_interaction
from bot.couriers import JobRecord
from bot.errors import DeliveryRefused
from bot.events import Done
from bot.i18n import using
from bot.jobs import JobHandle

log = logging.getLogger(__name__)


def locale_of(job: JobRecord) -> str:
    """The language the request was made in."""
    return str(job.origin.get("locale") or "")


class DiscordCourier:
    """``bot.couriers.Courier`` for Discord; needs only the REST API (no gateway)."""

    def __init__(self, client: discord.Client) -> None:
        self.client = client
        self._following: set[asyncio.Task[None]] = set()

    def _reply(self, job: JobRecord) -> Reply:
        reply = live_of(self.client).replies.get(job.id)
        if isinstance(reply, Reply):
            return reply
        stored = stored_interaction(self.client, job)
        if stored is None:
            raise DeliveryRefused("the job does not say where it was asked", permanent=True)
        return Reply(stored, 0.0, None)

    async def deliver(self, job: JobRecord, done: Done) -> str:
        with using(locale_of(job)):
            return await show_result(self._reply(job), job.id, done,
                                     str(job.params.get("prompt", "")))

    async def notify(self, job: JobRecord, text: str) -> None:
        stored = stored_interaction(self.client, job)
        if stored is None:
            raise DeliveryRefused("the job does not say where it was asked", permanent=True)
        channel = self.client.get_partial_messageable(stored.channel_id, guild_id=stored.guild_id)
        try:
            await channel.send(f"{stored.user.mention} {text}",
                               allowed_mentions=discord.AllowedMentions(
                                   everyone=False, roles=False, users=[stored.user]))
        except discord.HTTPException as exc:
            raise refusal(exc) from exc

    def resume(self, handle: JobHandle, job: JobRecord) -> None:
        """Show a job accepted elsewhere on its interaction's reply (while the token works;
        after that its end comes as a channel message)."""
        stored = stored_interaction(self.client, job)
        if stored is None:
            return
        with using(locale_of(job)):  # the task takes the reader's language with it
            task = asyncio.create_task(follow(stored, handle, str(job.params.get("prompt", ""))),
                                       name=f"discord-follow-{job.id}")
        self._following.add(task)
        task.add_done_callback(self._followed)

    def _followed(self, task: asyncio.Task[None]) -> None:
        self._following.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("showing a job on discord stopped: %s", type(exc).__name__)
