"""An interaction as its job stored it: any process can answer it through its webhook.

The gateway that received the interaction keeps its token in the job's ``origin["secret"]``
(storage drops it when the job ends). Discord accepts the token for 15 minutes from the
interaction; a worker edits the deferred reply and sends follow-ups with it until then, and
posts in the channel with the bot token after that.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import discord
from discord.utils import snowflake_time

from bot.couriers import JobRecord
from bot.i18n import current_locale

if TYPE_CHECKING:  # the bot's module imports this one through the courier
    from adapters.discord.client import Img2ImgBot

TOKEN_LIFETIME = 15 * 60.0  # Discord's: an interaction token works this long
TOKEN_MARGIN = 30.0  # an upload started just before the end would fail half-way
CHANNEL_FILE_LIMIT = 10 * 1024 * 1024  # Discord's attachment limit without boosts
ORIGINAL = cast(int, "@original")  # Discord's id for an interaction's first reply


def interaction_origin(interaction: discord.Interaction[Any]) -> dict[str, Any]:
    """What a job keeps so that another process can answer the interaction (in the language it
    was asked in), or tell its requester in the channel."""
    return {"channel_id": str(interaction.channel_id), "interaction_id": str(interaction.id),
            "guild_id": str(interaction.guild_id or ""), "locale": current_locale.get(),
            "user_name": interaction.user.display_name,
            "application_id": str(interaction.application_id),
            "attachment_limit": interaction.filesize_limit,
            "secret": {"interaction_token": interaction.token}}


def token_expires_at(origin: dict[str, Any]) -> float:
    """When the stored interaction's token stops working (0 when none is stored)."""
    interaction_id = str(origin.get("interaction_id", ""))
    if not interaction_id.isdigit() or not _token(origin):
        return 0.0
    return snowflake_time(int(interaction_id)).timestamp() + TOKEN_LIFETIME


def _token(origin: dict[str, Any]) -> str:
    secret = origin.get("secret")
    return str(secret.get("interaction_token", "")) if isinstance(secret, dict) else ""


@dataclass(slots=True)
class Requester:
    """Who asked (a ``Snowflake``, so ``AllowedMentions`` can name them)."""

    id: int
    display_name: str

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


@dataclass(slots=True)
class StoredInteraction:
    """The parts of ``discord.Interaction`` that ``delivery.Reply`` uses, rebuilt from a job;
    ``usable`` is False when the token is missing or too old to try."""

    client: Img2ImgBot
    channel_id: int
    guild_id: int | None
    user: Requester
    filesize_limit: int
    usable: bool
    followup: discord.Webhook
    extras: dict[str, Any] = field(default_factory=dict)

    async def edit_original_response(self, **fields: Any) -> discord.WebhookMessage:
        return await self.followup.edit_message(ORIGINAL, **fields)


# What a Reply can answer.
AnyInteraction: TypeAlias = "discord.Interaction[Img2ImgBot] | StoredInteraction"


def stored_interaction(client: Img2ImgBot, job: JobRecord) -> StoredInteraction | None:
    """The job's interaction, or None when the job does not say where it was asked."""
    origin = job.origin
    channel_id = str(origin.get("channel_id", ""))
    user_id = job.user_key.partition(":")[2]
    if not channel_id.isdigit() or not user_id.isdigit():
        return None
    guild_id = str(origin.get("guild_id", ""))
    usable = time.time() < token_expires_at(origin) - TOKEN_MARGIN
    app_id = str(origin.get("application_id", ""))
    webhook = discord.Webhook.partial(int(app_id) if app_id.isdigit() else 0,
                                      _token(origin) or "-", client=client)
    limit = int(origin.get("attachment_limit") or CHANNEL_FILE_LIMIT) if usable \
        else CHANNEL_FILE_LIMIT
    return StoredInteraction(
        client, int(channel_id), int(guild_id) if guild_id.isdigit() else None,
        Requester(int(user_id), str(origin.get("user_name", "")) or f"<@{user_id}>"),
        limit, usable, webhook)
