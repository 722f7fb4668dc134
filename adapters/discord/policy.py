"""Per-channel switches on top of a server's policy: where the bot answers, where NSFW may be on.

A channel's switches are the chat settings of ``discord:<channel_id>`` (a thread uses its parent
channel's), written with the core's ``change_chat_setting`` so they read like any chat policy.
They only narrow the server's policy: the core still applies the server's ``enabled`` and
``nsfw``, and NSFW also needs a channel Discord marks NSFW.
"""

from __future__ import annotations

from typing import Any

import discord

from bot.app import App
from bot.errors import PolicyError
from bot.i18n import Msg
from bot.models import ChatRef

SWITCHES = ("enabled", "nsfw")


def channel_chat(channel_id: int) -> ChatRef:
    """The settings key under which one channel's switches are kept."""
    return ChatRef("discord", str(channel_id))


def switch_target(channel: Any) -> tuple[int, bool]:
    """The channel whose switches apply (a thread's parent) and whether Discord marks it NSFW."""
    channel_id = getattr(channel, "parent_id", None) or channel.id
    is_nsfw = getattr(channel, "is_nsfw", None)
    return int(channel_id), bool(is_nsfw()) if callable(is_nsfw) else False


async def channel_switches(app: App, channel_id: int) -> dict[str, bool]:
    """The switches an admin set on this channel (absent: the server's policy decides)."""
    policy = (await app.storage.chat_settings(channel_chat(channel_id).key)).get("policy", {})
    return {key: bool(policy[key]) for key in SWITCHES if key in policy}


async def channel_allows(app: App, interaction: discord.Interaction) -> bool:
    """Raise ``PolicyError`` where admins switched the bot off in this channel.

    Otherwise return the ``nsfw_channel`` value for the request's ``ChatRef``: Discord marks the
    channel NSFW and its admins have not switched NSFW off there. Always False in DMs.
    """
    if interaction.guild_id is None or interaction.channel is None:
        return False
    channel_id, marked_nsfw = switch_target(interaction.channel)
    switches = await channel_switches(app, channel_id)
    if not switches.get("enabled", True):
        raise PolicyError(msg=Msg("dc-channel-off"))
    return marked_nsfw and switches.get("nsfw", True)
