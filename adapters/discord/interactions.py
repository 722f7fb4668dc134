"""An interaction as the adapter sees it: who asks and where, claiming it, private answers.

``Interaction`` is the type whose ``client`` is the adapter's bot (``client.Img2ImgBot``: the
app, and the jobs it shows through ``bot.following``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeAlias

import discord
from discord import app_commands

from bot import listing
from bot.models import ChatRef, UserRef

if TYPE_CHECKING:  # the bot's module imports every command module, which use this alias
    from adapters.discord.client import Img2ImgBot

Interaction: TypeAlias = "discord.Interaction[Img2ImgBot]"
Names: TypeAlias = "Callable[[Interaction], Iterable[str] | Awaitable[Iterable[str]]]"

LIST_LIMIT = 2000 - 100  # a message holds 2,000 characters; room for a title
MAX_CHOICES = 25  # Discord shows at most 25 suggestions


async def first_time(interaction: Interaction) -> bool:
    """Claim the interaction; False when Discord delivered it before (already answered)."""
    return await interaction.client.app.first_time("discord", str(interaction.id))


def user_of(interaction: Interaction) -> UserRef:
    """The person behind an interaction, as the core knows them."""
    return UserRef("discord", str(interaction.user.id), interaction.user.name)


def chat_of(interaction: Interaction, *, nsfw_channel: bool = False) -> ChatRef:
    """The server whose settings apply (in DMs, the DM channel: a private chat)."""
    guild_id = interaction.guild_id
    return ChatRef("discord", str(guild_id or interaction.channel_id), private=guild_id is None,
                   nsfw_channel=nsfw_channel)


async def private(interaction: Interaction, text: str, **extra: Any) -> None:
    """Answer only the person who asked."""
    await interaction.response.send_message(text, ephemeral=True, **extra)


async def private_list(interaction: Interaction, title: str | None, lines: list[str]) -> None:
    """Answer only the asker with ``lines`` as a bulleted list that fits, under ``title``."""
    body = listing.bullet_list(lines, LIST_LIMIT)
    await private(interaction, "\n".join(filter(None, (title, body))))


class Suggested(app_commands.Transformer[discord.Client]):
    """A text option with suggestions as the user types: of the names ``names`` gives for the
    interaction (the options filled in so far are in its ``namespace``), those containing what
    was typed (prefix matches first when ``ranked``, else in their own order), at most 25, each
    shown as ``label(name)``. Any text is taken: the core checks it."""

    def __init__(self, names: Names, *, ranked: bool = True,
                 label: Callable[[str], str] = str.strip) -> None:
        self.names, self.ranked, self.label = names, ranked, label

    async def transform(self, interaction: discord.Interaction[Any], value: Any, /) -> Any:
        return value

    async def autocomplete(self, interaction: discord.Interaction[Any], value: int | float | str,
                           /) -> list[app_commands.Choice[int | float | str]]:
        names = await discord.utils.maybe_coroutine(self.names, interaction)
        return [app_commands.Choice(name=self.label(n)[:100], value=n)
                for n in listing.matching(names, str(value), ranked=self.ranked)[:MAX_CHOICES]]
