"""Small helpers shared by the user and admin commands: who is asking, lists as text."""

from __future__ import annotations

from typing import Any

from adapters.discord.state import Interaction
from bot.i18n import t
from bot.models import UserRef

MESSAGE_LIMIT = 2000


def user_of(interaction: Interaction) -> UserRef:
    """The person behind an interaction, as the core knows them."""
    return UserRef("discord", str(interaction.user.id), interaction.user.name)


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
