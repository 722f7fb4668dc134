"""Discord adapter (discord.py 2): slash command, context menu, progress, result buttons.

``run_discord(app, stop)`` is what ``img2img-bot run`` starts; ``build_bot(app)`` gives the bot
itself (tests start it against the fake Discord).
"""

from __future__ import annotations

import asyncio
import contextlib

import discord

from adapters.discord.client import build_bot
from adapters.discord.state import live_of
from bot.app import App
from bot.errors import ConfigError

__all__ = ["build_bot", "run_discord"]


async def run_discord(app: App, stop: asyncio.Event) -> None:
    """Run the bot until ``stop`` is set; jobs still on show are refunded and their users told."""
    settings = app.config.discord
    if settings is None or settings.token is None:
        raise ConfigError("discord.token: set it, or DISCORD_BOT_TOKEN")
    bot = build_bot(app)
    running = asyncio.create_task(bot.start(settings.token.get_secret_value()),
                                  name="discord-bot")
    stopping = asyncio.create_task(stop.wait(), name="discord-stop")
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if running.done():
            running.result()
    except discord.LoginFailure as exc:
        raise ConfigError("discord.token: Discord refused the bot token") from exc
    finally:
        stopping.cancel()
        await live_of(bot).stop(app)
        await bot.close()
        with contextlib.suppress(asyncio.CancelledError, discord.DiscordException):
            await running
