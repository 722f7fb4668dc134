"""Delivery on Discord: through the interaction's reply while this process shows it, else a
channel message with the bot token that mentions the requester (after a restart, or once
the interaction token has expired)."""

from __future__ import annotations

import io
from typing import Any

import discord

from adapters.discord.delivery import fitted, refusal, result_embed, show_result
from adapters.discord.state import live_of
from adapters.discord.views import result_view
from bot.couriers import JobRecord
from bot.errors import DeliveryRefused
from bot.events import Done
from bot.jobs import JobHandle

CHANNEL_FILE_LIMIT = 10 * 1024 * 1024  # Discord's attachment limit without boosts


class DiscordCourier:
    """``bot.couriers.Courier`` for Discord."""

    def __init__(self, client: discord.Client) -> None:
        self.client = client

    def _channel(self, job: JobRecord) -> tuple[discord.PartialMessageable, str,
                                                discord.AllowedMentions]:
        """The job's channel, the requester's mention, and mentions allowing only them."""
        channel_id = str(job.origin.get("channel_id", ""))
        user_id = job.user_key.partition(":")[2]
        if not channel_id.isdigit() or not user_id.isdigit():
            raise DeliveryRefused("the job does not say where it was asked", permanent=True)
        mentions = discord.AllowedMentions(everyone=False, roles=False,
                                           users=[discord.Object(int(user_id))])
        guild_id = str(job.origin.get("guild_id", ""))
        channel = self.client.get_partial_messageable(
            int(channel_id), guild_id=int(guild_id) if guild_id.isdigit() else None)
        return channel, f"<@{job.user_key.partition(':')[2]}>", mentions

    async def deliver(self, job: JobRecord, done: Done) -> str:
        prompt = str(job.params.get("prompt", ""))
        reply = live_of(self.client).replies.get(job.id)
        if reply is not None:
            return await show_result(reply, job.id, done, prompt)
        channel, mention, mentions = self._channel(job)
        images = await fitted(done, CHANNEL_FILE_LIMIT)
        embed = result_embed(done, prompt, images[0][0], str(job.origin.get("user_name", "")) or
                             mention)
        files = [discord.File(io.BytesIO(data), filename=name) for name, data in images]
        extra: dict[str, Any] = {"view": result_view(job.id)}
        try:
            message = await channel.send(content=mention, embed=embed, files=files,
                                         allowed_mentions=mentions, **extra)
        except discord.HTTPException as exc:
            raise refusal(exc) from exc
        return str(message.id)

    async def notify(self, job: JobRecord, text: str) -> None:
        channel, mention, mentions = self._channel(job)
        try:
            await channel.send(f"{mention} {text}", allowed_mentions=mentions)
        except discord.HTTPException as exc:
            raise refusal(exc) from exc

    def resume(self, handle: JobHandle, job: JobRecord) -> None:
        return None  # the interaction is gone: the result will come as a channel message
