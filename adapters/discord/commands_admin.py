"""Server admin commands (Manage Server) and the bot owners' /grant and /stats."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from adapters.discord.commands_user import setting_values
from adapters.discord.interactions import (
    Interaction,
    Suggested,
    chat_of,
    first_time,
    private,
    private_list,
    user_of,
)
from adapters.discord.locale import text
from adapters.discord.policy import channel_policy, switch_target
from adapters.discord.replies import NotOwner
from bot.app import App
from bot.i18n import Msg, t
from bot.models import UserRef
from bot.setting_fields import CHAT_FIELDS

ON_OFF = [app_commands.Choice(name=text("dc-on"), value="on"),
          app_commands.Choice(name=text("dc-off"), value="off")]
# Discord hides the admin group from others, but a server can grant it to anyone: the bot checks.
# (Discord computes ``interaction.permissions`` with Administrator granting everything.)
manage_server = app_commands.checks.has_permissions(manage_guild=True)
# A server setting's key, suggested with what it does.
SERVER_KEYS = Suggested(lambda _: [f.key for f in CHAT_FIELDS], ranked=False, label=lambda key: (
    f"{key}: {next(f.help_text() for f in CHAT_FIELDS if f.key == key)}"))


@app_commands.default_permissions(manage_guild=True)
@app_commands.guild_only()
class AdminCommands(commands.GroupCog, group_name="img2img-admin",
                    group_description=text("dc-cmd-admin")):
    """/img2img-admin show, set, reset and channel: for members with Manage Server."""

    def __init__(self, app: App) -> None:
        self.app = app

    @manage_server
    @app_commands.command(name="show", description=text("dc-cmd-admin-show"))
    async def show(self, interaction: Interaction) -> None:
        channel_id, policy = await channel_policy(self.app, interaction)
        lines = await self.app.preferences.describe_chat(chat_of(interaction))
        await private_list(interaction, t("dc-server-settings"),
                           lines + policy.lines(f"<#{channel_id}>"))

    @manage_server
    @app_commands.command(name="set", description=text("dc-cmd-admin-set"))
    @app_commands.describe(key=text("dc-opt-key"), value=text("dc-opt-value"))
    async def set_(self, interaction: Interaction, key: app_commands.Transform[str, SERVER_KEYS],
                   value: app_commands.Transform[str, setting_values(CHAT_FIELDS)]) -> None:
        note = await self.app.preferences.set_chat(chat_of(interaction), key, value)
        where = " " + t("dc-nsfw-where") if note == Msg("setting-on", {"key": "nsfw"}) else ""
        await private(interaction, note.render() + where)

    @manage_server
    @app_commands.command(name="reset", description=text("dc-cmd-admin-reset"))
    async def reset(self, interaction: Interaction) -> None:
        await self.app.preferences.reset_chat(chat_of(interaction))
        await private(interaction, t("dc-server-reset"))

    @manage_server
    @app_commands.command(name="channel", description=text("dc-cmd-admin-channel"))
    @app_commands.describe(enabled=text("dc-opt-enabled"), nsfw=text("dc-opt-nsfw"))
    @app_commands.choices(enabled=ON_OFF, nsfw=ON_OFF)
    async def channel(self, interaction: Interaction, enabled: str | None = None,
                      nsfw: str | None = None) -> None:
        channel_id, marked = switch_target(interaction.channel)
        switches = {key: value == "on" for key, value in (("enabled", enabled), ("nsfw", nsfw))
                    if value is not None}
        policy = await self.app.switch_place(chat_of(interaction), str(channel_id), switches,
                                             marked_nsfw=marked)
        await private_list(interaction, None, policy.lines(f"<#{channel_id}>"))


class OwnerCommands(commands.Cog):
    """/grant and /stats: for the bot's owners (``credits.owners``)."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        """Only the bot's owners may (discord.py checks this before each command of the cog)."""
        if not self.app.config.is_owner(user_of(interaction).key):
            raise NotOwner()
        return True

    @app_commands.command(name="grant", description=text("dc-cmd-grant"))
    @app_commands.describe(user=text("dc-opt-user"), amount=text("dc-opt-amount"))
    async def grant(self, interaction: Interaction, user: discord.User,
                    amount: app_commands.Range[int, -1_000_000, 1_000_000]) -> None:
        if not await first_time(interaction):  # a re-delivery must not grant twice
            return
        target = UserRef("discord", str(user.id), user.name)
        balance = await self.app.grant(target, amount, by=user_of(interaction))
        await private(interaction, t("dc-granted" if amount >= 0 else "dc-took", count=abs(amount),
                                     user=user.mention, balance=balance))

    @app_commands.command(name="stats", description=text("dc-cmd-stats"))
    async def stats(self, interaction: Interaction) -> None:
        lines = (await self.app.stats()).lines()
        await private_list(interaction, t("dc-stats"), lines)
