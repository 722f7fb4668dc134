"""Per-channel switches on top of a server's policy (``bot.places``): where the bot answers,
where NSFW may be on. A thread uses its parent channel's switches."""

from __future__ import annotations

from typing import Any

from adapters.discord.interactions import Interaction, chat_of
from bot.app import App
from bot.places import PlacePolicy


def switch_target(channel: Any) -> tuple[int, bool]:
    """The channel whose switches apply (a thread's parent) and whether Discord marks it NSFW."""
    channel_id = getattr(channel, "parent_id", None) or channel.id
    is_nsfw = getattr(channel, "is_nsfw", None)
    return int(channel_id), bool(is_nsfw()) if callable(is_nsfw) else False


async def channel_policy(app: App, interaction: Interaction) -> tuple[int, PlacePolicy]:
    """The channel whose switches apply and the server's policy there."""
    channel_id, marked = switch_target(interaction.channel)
    return channel_id, await app.place_policy(chat_of(interaction), str(channel_id),
                                              marked_nsfw=marked)


async def channel_allows(app: App, interaction: Interaction) -> bool:
    """Raise ``PolicyError`` where admins switched the bot off in this channel; otherwise the
    ``nsfw_channel`` value for the request's ``ChatRef``. Always False in DMs."""
    if interaction.guild_id is None or interaction.channel is None:
        return False
    return (await channel_policy(app, interaction))[1].admit()
