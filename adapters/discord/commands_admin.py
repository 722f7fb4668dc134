"""Server admin and owner slash commands."""

from __future__ import annotations

from discord.ext import commands

from bot.app import App


def register(bot: commands.Bot, app: App) -> None:
    """Add the admin and owner commands to the bot's tree."""
