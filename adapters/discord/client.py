"""Building the bot: endpoints from config, intents, sharding, commands, the start-up hook, and
Discord's share of health (gateway state) and metrics (every REST answer)."""

from __future__ import annotations

import logging
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl
from discord import app_commands
from discord.ext import commands

from adapters.discord import payments
from adapters.discord.commands_admin import AdminCommands, OwnerCommands
from adapters.discord.commands_user import UserCommands
from adapters.discord.delivery import DiscordCourier
from adapters.discord.interactions import Interaction
from adapters.discord.locale import CatalogueTranslator, speak
from adapters.discord.replies import handle_error
from adapters.discord.requests import RequestCommands
from adapters.discord.sync import sync_if_changed
from adapters.discord.views import JobButton
from bot import metrics
from bot.app import App
from bot.config import DiscordConfig
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


class Img2ImgBot(commands.Bot):
    """The bot holding the app and the jobs it shows. A worker's bot only logs in (REST API, no
    gateway): its start-up hook registers the courier and nothing else."""

    def __init__(self, app: App, **options: Any) -> None:
        """``options`` (e.g. ``guild_ready_timeout``) go to discord.py, on top of these."""
        # Prompts are user text: nothing the bot posts pings anyone unless it says so itself.
        super().__init__(**{"command_prefix": commands.when_mentioned, "help_command": None,
                            "intents": discord.Intents.default(), "tree_cls": Tree,
                            "allowed_mentions": discord.AllowedMentions.none(),
                            "http_trace": metrics.platform_trace("discord"), **options})
        self.app: App = app  # typed here: command modules read it before this one is checked
        self.live = Following(app, "discord")

    async def setup_hook(self) -> None:
        """Buttons of earlier runs work again; commands sync only when they changed."""
        self.app.service.register_courier("discord", DiscordCourier(self))
        if self.app.role == "worker":
            return
        for cog in (UserCommands(self.app), AdminCommands(self.app), OwnerCommands(self.app),
                    payments.PaymentCommands(self, self.app), RequestCommands(self, self.app)):
            await self.add_cog(cog)
        self.add_dynamic_items(JobButton)
        await self.tree.set_translator(CatalogueTranslator())
        try:
            guild_id = (self.app.config.discord or DiscordConfig()).command_guild
            await sync_if_changed(self.tree, guild_id)
        except discord.HTTPException as exc:
            log.error("syncing discord commands failed (%s %s); will retry at the next start",
                      exc.status, exc.code)

    # Discord is healthy from READY (or RESUMED) until the gateway drops.
    async def on_ready(self) -> None:
        self.app.health.up("discord", f"gateway connected as {self.user}")

    async def on_resumed(self) -> None:
        self.app.health.answered("discord")

    async def on_disconnect(self) -> None:
        self.app.health.down("discord", "gateway disconnected; reconnecting")


# Bot's Client and AutoShardedClient type their connection state differently; the sharded
# client's is a subclass, so the bot works the same on it.
class ShardedImg2ImgBot(Img2ImgBot, commands.AutoShardedBot):  # type: ignore[misc]
    """The same bot on several shards (``discord.sharded`` or ``discord.shard_ids``)."""


class Tree(app_commands.CommandTree[Img2ImgBot]):
    """Every command, and its error handler, speaks the reader's language."""

    async def interaction_check(self, interaction: Interaction, /) -> bool:
        return await speak(interaction)

    async def on_error(self, interaction: Interaction, error: app_commands.AppCommandError,
                       /) -> None:
        await handle_error(interaction, error)


def build_bot(app: App, **options: Any) -> Img2ImgBot:
    """The bot for ``app`` (``options`` go to discord.py, see ``Img2ImgBot``)."""
    settings = app.config.discord or DiscordConfig()
    if settings.sharded or settings.shard_ids:
        return ShardedImg2ImgBot(app, shard_count=settings.shard_count,
                                 shard_ids=settings.shard_ids, **options)
    return Img2ImgBot(app, **options)
