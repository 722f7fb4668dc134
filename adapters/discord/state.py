"""What the adapter keeps on the bot: the app and the jobs it shows (``bot.following``)."""

from __future__ import annotations

from typing import Any

import discord

from adapters.discord.stored import AnyInteraction
from bot.app import App
from bot.following import Following


def app_of(interaction: AnyInteraction) -> App:
    """The ``App`` held by the client that answers ``interaction``."""
    app = getattr(interaction.client, "app", None)
    if not isinstance(app, App):
        raise RuntimeError("this client was not built by adapters.discord.client")
    return app


def live_of(client: discord.Client) -> Following:
    """The jobs shown by ``client``."""
    live = getattr(client, "live", None)
    if not isinstance(live, Following):
        raise RuntimeError("this client was not built by adapters.discord.client")
    return live


async def first_time(interaction: discord.Interaction[Any]) -> bool:
    """Claim the interaction; False when Discord delivered it before (already answered)."""
    return await app_of(interaction).service.first_time("discord", str(interaction.id))
