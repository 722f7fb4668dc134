"""User slash commands: credits, settings, styles, providers, cancel, forget."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from adapters.discord.interactions import (
    Interaction,
    Suggested,
    first_time,
    private,
    private_list,
    user_of,
)
from adapters.discord.locale import speak, text
from adapters.discord.replies import handle_error
from bot.app import App
from bot.credits import describe_entry
from bot.i18n import t
from bot.listing import bullet_list
from bot.models import UserRef
from bot.presenter import styles_lines
from bot.setting_fields import USER_FIELDS, SettingField, find, value_names

# Each key is described by the /img2img option of the same name.
KEYS = [app_commands.Choice(name=text(f"dc-opt-{f.key}", prefix=f.key), value=f.key)
        for f in USER_FIELDS]


def setting_values(fields: tuple[SettingField, ...]) -> Suggested:
    """A setting's value, suggested where the key chosen so far takes names (locks, switches,
    styles...)."""
    return Suggested(lambda interaction: value_names(
        find(fields, interaction.namespace.key or ""), styles=interaction.client.app.config.styles,
        providers=interaction.client.app.providers), ranked=False)


def help_text(app: App, user: UserRef) -> str:
    """How to ask, the options, styles and backends, and the commands this user may use."""
    parts = [f"**{t('help-how-title')}**\n{t('dc-help-how')}"]
    parts += [f"**{part.title}**\n{bullet_list(part.lines, 600)}"
              for part in app.help_sections().values() if part.lines]
    parts.append(f"**{t('help-commands')}**\n{t('dc-help-commands')}\n{t('dc-help-admins')}")
    if app.config.is_owner(user.key):
        parts.append(t("dc-help-owners"))
    return "\n\n".join(parts)


class ForgetView(discord.ui.View):
    """Asks before ``/forget`` erases anything; only the asker sees it (ephemeral)."""

    def __init__(self, app: App, user: UserRef) -> None:
        super().__init__(timeout=120)
        self.app = app
        self.user = user
        self.erase.label, self.keep.label = t("dc-forget-erase"), t("dc-forget-keep")

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        return await speak(interaction)

    @discord.ui.button(style=discord.ButtonStyle.danger, custom_id="img2img:s:forget")
    async def erase(self, interaction: Interaction, button: discord.ui.Button[ForgetView]) -> None:
        count = await self.app.forget_user(self.user)
        self.stop()
        await interaction.response.edit_message(content=t("dc-forget-done", count=count), view=None)

    @discord.ui.button(style=discord.ButtonStyle.secondary, custom_id="img2img:s:keep")
    async def keep(self, interaction: Interaction, button: discord.ui.Button[ForgetView]) -> None:
        self.stop()
        await interaction.response.edit_message(content=t("dc-forget-kept"), view=None)

    async def on_error(self, interaction: discord.Interaction[Any], error: Exception,
                       item: discord.ui.Item[ForgetView]) -> None:
        await handle_error(interaction, error)


class UserCommands(commands.Cog):
    """/help, /credits, /settings, /styles, /providers, /cancel and /forget."""

    settings = app_commands.Group(name="settings", description=text("menu-settings"))

    def __init__(self, app: App) -> None:
        self.app = app

    @app_commands.command(name="help", description=text("menu-help"))
    async def help_(self, interaction: Interaction) -> None:
        await private(interaction, help_text(self.app, user_of(interaction)))

    @app_commands.command(name="credits", description=text("menu-balance"))
    async def credits(self, interaction: Interaction) -> None:
        if not self.app.config.credits.enabled:
            await private(interaction, t("dc-credits-off"))
            return
        user = user_of(interaction)
        title = f"**{t('dc-balance', count=await self.app.balance(user))}**"
        lines = [describe_entry(e) for e in await self.app.history(user, 10)]
        await private_list(interaction, f"{title}\n{t('dc-recent')}" if lines else title, lines)

    @settings.command(name="show", description=text("dc-cmd-settings-show"))
    async def settings_show(self, interaction: Interaction) -> None:
        lines = await self.app.preferences.describe_user(user_of(interaction))
        await private_list(interaction, t("dc-your-defaults"), lines)

    @settings.command(name="set", description=text("dc-cmd-settings-set"))
    @app_commands.describe(key=text("dc-opt-key"), value=text("dc-opt-value"))
    @app_commands.choices(key=KEYS)
    async def settings_set(self, interaction: Interaction, key: str,
                           value: app_commands.Transform[str, setting_values(USER_FIELDS)]) -> None:
        note = await self.app.preferences.set_user(user_of(interaction), key, value)
        await private(interaction, note.render())

    @settings.command(name="reset", description=text("dc-cmd-settings-reset"))
    @app_commands.describe(key=text("dc-opt-reset-key"))
    @app_commands.choices(key=KEYS)
    async def settings_reset(self, interaction: Interaction, key: str | None = None) -> None:
        note = await self.app.preferences.reset_user(user_of(interaction), key)
        await private(interaction, note.render())

    @app_commands.command(name="styles", description=text("menu-styles"))
    async def styles(self, interaction: Interaction) -> None:
        lines = styles_lines(self.app.config.styles) or [t("dc-none-configured")]
        await private_list(interaction, t("dc-styles"), lines)

    @app_commands.command(name="providers", description=text("menu-providers"))
    async def providers(self, interaction: Interaction) -> None:
        lines = self.app.provider_lines() or [t("dc-none-configured")]
        await private_list(interaction, t("dc-backends"), lines)

    @app_commands.command(name="cancel", description=text("menu-cancel"))
    async def cancel(self, interaction: Interaction) -> None:
        if not await first_time(interaction):  # a re-delivery must not cancel a second job
            return
        job = await self.app.cancel_latest(user_of(interaction))
        answer = ("dc-nothing-to-cancel" if job is None else
                  "dc-cancelled-refunded" if job.price else "error-cancelled")
        await private(interaction, t(answer, count=job.price if job else 0))

    @app_commands.command(name="forget", description=text("menu-forget"))
    async def forget(self, interaction: Interaction) -> None:
        await private(interaction, t("dc-forget-question"),
                      view=ForgetView(self.app, user_of(interaction)))
