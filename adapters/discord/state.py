"""The ``Interaction`` type whose ``client`` is the adapter's bot (``client.Img2ImgBot``: the
app, and the jobs it shows through ``bot.following``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

import discord

if TYPE_CHECKING:  # the bot's module imports every command module, which use this alias
    from adapters.discord.client import Img2ImgBot

Interaction: TypeAlias = "discord.Interaction[Img2ImgBot]"


async def first_time(interaction: Interaction) -> bool:
    """Claim the interaction; False when Discord delivered it before (already answered)."""
    return await interaction.client.app.first_time("discord", str(interaction.id))
