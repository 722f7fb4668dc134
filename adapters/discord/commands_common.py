"""Small helpers shared by the user and admin commands: who is asking, lists as text."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from discord import app_commands

from adapters.discord.state import Interaction
from bot.i18n import t
from bot.models import ChatRef, UserRef

MESSAGE_LIMIT = 2000
MAX_CHOICES = 25  # Discord shows at most 25 suggestions


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


def bullet_list(lines: list[str], limit: int = MESSAGE_LIMIT - 100) -> str:
    """Lines as a bulleted list that fits a message, with a note when some were left out."""
    out: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        item = f"• {line}"
        if used + len(item) + 1 > limit:
            out.append(t("dc-more", count=len(lines) - index))
            break
        out.append(item)
        used += len(item) + 1
    return "\n".join(out)


def choices(names: Iterable[str], current: str, *, ranked: bool = True,
            label: Callable[[str], str] = str.strip) -> list[app_commands.Choice[str]]:
    """Names containing what the user typed (prefix matches first when ``ranked``, else in
    their own order), at most 25, each shown as ``label(name)``."""
    typed = current.strip().lower()
    hits = [n for n in names if typed in n.lower() and 0 < len(n) <= 100]
    if ranked:
        hits.sort(key=lambda n: (not n.lower().startswith(typed), n.lower()))
    return [app_commands.Choice(name=label(n)[:100], value=n) for n in hits[:MAX_CHOICES]]
