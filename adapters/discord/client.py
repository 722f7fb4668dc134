"""Building the bot: endpoints from config, intents, sharding, commands, and the start-up hook."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import discord
import discord.gateway
import discord.http
import yarl
from discord import app_commands
from discord.ext import commands

from adapters.discord import payments
from adapters.discord.commands_admin import AdminCommands, OwnerCommands
from adapters.discord.commands_user import UserCommands
from adapters.discord.courier import DiscordCourier
from adapters.discord.locale import CatalogueTranslator, speak
from adapters.discord.replies import install_error_handler
from adapters.discord.requests import RequestCommands
from adapters.discord.state import app_of
from adapters.discord.sync import sync_if_changed
from adapters.discord.views import DYNAMIC_ITEMS
from adapters.discord.watch import rest_trace, watch_gateway
from bot.app import App
from bot.config import DiscordConfig
from bot.errors import StorageUnavailable
from bot.following import Following

log = logging.getLogger(__name__)


def apply_endpoints(settings: DiscordConfig) -> None:
    """Point discord.py's REST (webhooks included) and gateway at the configured URLs.

    discord.py reads them from class attributes, for every client of the process: it has no
    per-client setting. So each entry point (``run_discord``, ``doctor``) sets them once,
    before any client exists, and nothing else touches them.
    """
    discord.http.Route.BASE = settings.api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)


class Img2ImgHooks:
    """What both bot classes add: the app, the jobs on show, and the start-up hook."""

    app: App
    live: Following
    background: set[asyncio.Task[Any]]

    def _attach(self, app: App) -> None:
        self.app = app
        self.live = Following(app, "discord")
        self.background = set()

    async def setup_hook(self) -> None:
        """Buttons of earlier runs work again; commands sync only when they changed."""
        bot = cast(commands.Bot, self)
        for cog in (UserCommands(self.app), AdminCommands(self.app), OwnerCommands(self.app),
                    payments.PaymentCommands(bot, self.app), RequestCommands(bot, self.app)):
            await bot.add_cog(cog)
        bot.add_dynamic_items(*DYNAMIC_ITEMS)
        await bot.tree.set_translator(CatalogueTranslator())
        try:
            await sync_if_changed(bot, bot.tree, self.app.config)
        except discord.HTTPException as exc:
            log.error("syncing discord commands failed (%s %s); will retry at the next start",
                      exc.status, exc.code)
        self.app.service.register_courier("discord", DiscordCourier(bot))
        task = asyncio.create_task(self._purchases(bot), name="discord-unconsumed-purchases")
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _purchases(self, bot: commands.Bot) -> None:
        """Finish purchases made while the bot was down (or whose consume failed)."""
        await bot.wait_until_ready()
        try:
            done = await payments.take_unconsumed(bot, self.app)
        except discord.HTTPException as exc:
            log.error("listing entitlements failed (%s %s); retried at the next start",
                      exc.status, exc.code)
            return
        except StorageUnavailable:  # logged by the grant; the entitlement stays unconsumed
            return
        if done:
            log.info("finished %d discord purchase(s) left unconsumed", done)


class Tree(app_commands.CommandTree[Any]):
    """Every command, and its error handler, speaks the reader's language."""

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        return await speak(app_of(interaction), interaction)


class RestClient(discord.Client):
    """A worker's Discord: the REST API with the bot token, no gateway connection (it logs
    in but never connects); it shows and delivers the jobs its process runs."""

    def __init__(self, app: App, **options: Any) -> None:
        super().__init__(**options)
        self.app = app
        self.live = Following(app, "discord")


def build_rest_client(app: App) -> RestClient:
    """The worker's client; ``login`` it, then register ``DiscordCourier(client)``."""
    return RestClient(app, intents=discord.Intents.none(),
                      allowed_mentions=discord.AllowedMentions.none(), http_trace=rest_trace())


class Img2ImgBot(Img2ImgHooks, commands.Bot):
    def __init__(self, app: App, **options: Any) -> None:
        super().__init__(**options)
        self._attach(app)


class ShardedImg2ImgBot(Img2ImgHooks, commands.AutoShardedBot):
    def __init__(self, app: App, **options: Any) -> None:
        super().__init__(**options)
        self._attach(app)


def build_bot(app: App, **options: Any) -> commands.Bot:
    """The bot for ``app`` (``options`` go to discord.py, e.g. ``guild_ready_timeout``)."""
    settings = app.config.discord or DiscordConfig()
    # Prompts are user text: nothing the bot posts pings anyone unless it says so itself.
    options = {"command_prefix": commands.when_mentioned, "help_command": None,
               "intents": discord.Intents.default(),
               "allowed_mentions": discord.AllowedMentions.none(), "http_trace": rest_trace(),
               "tree_cls": Tree,
               **options}
    bot: commands.Bot
    if settings.sharded or settings.shard_ids:
        # AutoShardedBot is a Bot in all but name (BotBase + AutoShardedClient).
        bot = cast(commands.Bot, ShardedImg2ImgBot(app, shard_count=settings.shard_count,
                                                   shard_ids=settings.shard_ids, **options))
    else:
        bot = Img2ImgBot(app, **options)
    install_error_handler(bot.tree)
    watch_gateway(bot, app.health)
    return bot
