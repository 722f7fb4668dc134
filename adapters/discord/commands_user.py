"""User slash commands: credits, settings, styles, providers, cancel, forget."""

from __future__ import annotations

from discord.ext import commands

from bot.app import App


def register(bot: commands.Bot, app: App) -> None:
    """Add the user commands to the bot's tree."""
