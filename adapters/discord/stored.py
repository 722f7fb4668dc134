"""Where a job's interaction is answered, the same whether this process received it or not.

The gateway that received the interaction keeps its token in the job's ``origin["secret"]``
(storage drops it when the job ends). Discord accepts the token for 15 minutes from the
interaction; any process edits the deferred reply and sends follow-ups through the
interaction's webhook until then, and posts in the channel with the bot token after that.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import discord
from discord.utils import snowflake_time

from bot.couriers import JobRecord

if TYPE_CHECKING:  # the bot's module imports this one through the courier
    from adapters.discord.client import Img2ImgBot

TOKEN_LIFETIME = 15 * 60.0  # Discord's: an interaction token works this long
TOKEN_MARGIN = 30.0  # an upload started just before the end would fail half-way
CHANNEL_FILE_LIMIT = 10 * 1024 * 1024  # Discord's attachment limit without boosts


def interaction_origin(interaction: discord.Interaction[Any]) -> dict[str, Any]:
    """What a job keeps so that another process can answer the interaction, or tell its
    requester in the channel (``App.submit`` adds the language it was asked in)."""
    return {"channel_id": str(interaction.channel_id), "interaction_id": str(interaction.id),
            "guild_id": str(interaction.guild_id or ""), "user_name": interaction.user.display_name,
            "application_id": str(interaction.application_id),
            "attachment_limit": interaction.filesize_limit,
            "secret": {"interaction_token": interaction.token}}


@dataclass(frozen=True, slots=True)
class Asked:
    """An interaction as ``delivery.Reply`` answers it: its webhook (``usable``: while the
    token works), its channel and its requester (a ``Snowflake`` ``AllowedMentions`` takes)."""

    webhook: discord.Webhook
    channel: discord.PartialMessageable
    requester: discord.Object
    requester_name: str
    filesize_limit: int
    usable: bool = True
    extras: dict[str, Any] = field(default_factory=dict)  # the live interaction's own

    @classmethod
    def live(cls, interaction: discord.Interaction[Img2ImgBot]) -> Asked:
        """The interaction this process received."""
        channel = interaction.client.get_partial_messageable(interaction.channel_id or 0,
                                                             guild_id=interaction.guild_id)
        return cls(interaction.followup, channel, discord.Object(interaction.user.id),
                   interaction.user.display_name, interaction.filesize_limit,
                   extras=interaction.extras)

    @classmethod
    def stored(cls, client: Img2ImgBot, job: JobRecord) -> Asked | None:
        """The job's interaction, or None when the job does not say where it was asked."""
        ids = {key: int(value) for key, value in job.origin.items() if str(value).isdigit()}
        secret = job.origin.get("secret")
        token = str(secret.get("interaction_token", "")) if isinstance(secret, dict) else ""
        user_id = job.user_key.partition(":")[2]
        if "channel_id" not in ids or not user_id.isdigit():
            return None
        asked_at = ids.get("interaction_id")
        usable = bool(token) and asked_at is not None and time.time() < snowflake_time(
            asked_at).timestamp() + TOKEN_LIFETIME - TOKEN_MARGIN
        webhook = discord.Webhook.partial(ids.get("application_id", 0), token or "-",
                                          client=client)
        channel = client.get_partial_messageable(ids["channel_id"], guild_id=ids.get("guild_id"))
        limit = ids.get("attachment_limit", CHANNEL_FILE_LIMIT) if usable else CHANNEL_FILE_LIMIT
        return cls(webhook, channel, discord.Object(int(user_id)),
                   str(job.origin.get("user_name") or f"<@{user_id}>"), limit, usable)
