"""Delivery on Discord, from whichever process runs the job: through the interaction's reply
(the live one where this process received it, else its stored webhook while the token is
valid), else a channel message with the bot token that mentions the requester."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from adapters.discord.delivery import Reply, refusal, show_result
from adapters.discord.stored import StoredInteraction, stored_interaction
from adapters.discord.views import cancel_view
from bot.couriers import JobRecord
from bot.errors import DeliveryRefused
from bot.events import Done
from bot.jobs import JobHandle

if TYPE_CHECKING:  # the bot's module builds this courier
    from adapters.discord.client import Img2ImgBot


class DiscordCourier:
    """``bot.couriers.Courier`` for Discord; needs only the REST API (no gateway)."""

    def __init__(self, client: Img2ImgBot) -> None:
        self.client = client

    async def deliver(self, job: JobRecord, done: Done) -> str:
        live = self.client.live
        await live.hold(job.id)
        reply = live.surface(job.id)
        if not isinstance(reply, Reply):
            reply = Reply(self._stored(job))
        return await show_result(reply, job.id, done, str(job.params.get("prompt", "")))

    async def notify(self, job: JobRecord, text: str) -> None:
        stored = self._stored(job)
        channel = self.client.get_partial_messageable(stored.channel_id, guild_id=stored.guild_id)
        try:
            await channel.send(f"{stored.user.mention} {text}",
                               allowed_mentions=discord.AllowedMentions(
                                   everyone=False, roles=False, users=[stored.user]))
        except discord.HTTPException as exc:
            raise refusal(exc) from exc

    def _stored(self, job: JobRecord) -> StoredInteraction:
        stored = stored_interaction(self.client, job)
        if stored is None:
            raise DeliveryRefused("the job does not say where it was asked", permanent=True)
        return stored

    def resume(self, handle: JobHandle, job: JobRecord) -> None:
        """Show a job accepted elsewhere on its interaction's reply (while the token works;
        after that its end comes as a channel message)."""
        stored = stored_interaction(self.client, job)
        if stored is None:
            return
        self.client.live.start(handle, Reply(stored, cancel_view(handle.id)), shown=True)
