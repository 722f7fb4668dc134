"""Discord adapter (discord.py 2): slash command, context menu, progress, result buttons.

``run_discord(app, stop)`` is what ``img2img-bot run`` starts: the bot on the gateway (roles
``all`` and ``gateway``), or, for ``--role worker``, only the REST API, through which the worker
shows and delivers the jobs it runs. ``build_bot(app)`` gives the bot itself (tests start it
against the fake Discord).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
import discord

from adapters.discord.client import Img2ImgBot, apply_endpoints, build_bot
from bot.app import App
from bot.errors import ConfigError
from bot.reconnect import until_reached

__all__ = ["build_bot", "run_discord"]

log = logging.getLogger(__name__)


async def run_discord(app: App, stop: asyncio.Event) -> None:
    """Run the bot until ``stop`` is set; jobs still on show are refunded and their users told.

    Discord unreachable at start (DNS, refused connection) is logged in one line and retried
    with backoff (``bot.reconnect``); once connected, discord.py reconnects by itself.
    """
    settings = app.config.discord
    if settings is None or settings.token is None:
        raise ConfigError("discord.token: set it, or DISCORD_BOT_TOKEN")
    app.health.expect("discord")
    apply_endpoints(settings)  # process-wide in discord.py: once, before the first client

    def unreachable(exc: Exception, pause: float) -> None:
        log.error("cannot reach Discord at %s (%s); retrying in %.0f s",
                  settings.api_base, type(exc).__name__, pause)
        app.health.down("discord", f"unreachable ({type(exc).__name__})")

    token = settings.token.get_secret_value()
    try:
        await until_reached(stop, lambda: _run_once(app, token, stop),
                            (aiohttp.ClientConnectionError, OSError), unreachable)
    except discord.LoginFailure as exc:
        raise ConfigError("discord.token: Discord refused the bot token") from exc


async def _run_once(app: App, token: str, stop: asyncio.Event) -> None:
    """Log in and connect to the gateway until ``stop``; a worker only logs in, since it
    delivers through Discord's REST API (and interaction webhooks) alone."""
    worker = app.role == "worker"
    bot = Img2ImgBot(app, intents=discord.Intents.none()) if worker else build_bot(app)
    running = asyncio.create_task(bot.login(token) if worker else bot.start(token),
                                  name="discord-bot")
    stopping = asyncio.create_task(stop.wait(), name="discord-stop")
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if running.done():
            running.result()
        if worker and not stop.is_set():
            app.health.up("discord", f"REST API as {bot.user} (worker)")
            await stop.wait()
    finally:
        stopping.cancel()
        await bot.live.stop()
        await bot.close()
        with contextlib.suppress(asyncio.CancelledError, discord.DiscordException,
                                 aiohttp.ClientError, OSError):
            await running
