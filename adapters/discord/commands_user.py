"""User slash commands: credits, settings, styles, providers, cancel, forget."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from adapters.discord.commands_common import bullet_list, plural, user_of
from adapters.discord.replies import handle_error
from adapters.discord.state import first_time
from bot.app import App
from bot.credits import describe_entry
from bot.models import UserRef
from bot.options import SPEC_LIST
from bot.preferences import USER_PREFS
from bot.presenter import providers_lines, styles_lines

# Friendly names accepted by bot.options.parse_value, in the order of SPEC_LIST.
_FRIENDLY = {"aspect": "ar", "negative_prompt": "negative", "samples": "count"}
KEYS = [app_commands.Choice(name=f"{_FRIENDLY.get(s.field, s.field)}: {s.help}"[:100],
                            value=_FRIENDLY.get(s.field, s.field)) for s in SPEC_LIST]
KEYS += [app_commands.Choice(name=f"{k}: {h}"[:100], value=k) for k, h in USER_PREFS.items()]


def value_choices(app: App, key: str | None, current: str) -> list[app_commands.Choice[str]]:
    """Suggestions for a setting's value: names where the option takes one."""
    names: list[str] = {"style": sorted(app.config.styles), "provider": list(app.providers),
                        "file": ["on", "off"]}.get(key or "", [])
    hits = [n for n in names if current.lower() in n.lower()]
    return [app_commands.Choice(name=n, value=n) for n in hits[:25]]


FORGET_QUESTION = ("Erase the prompts of your past images and your personal settings? Your "
                   "credit balance and its ledger stay, for the audit trail.")


class ForgetView(discord.ui.View):
    """Asks before ``/forget`` erases anything; only the asker sees it (ephemeral)."""

    def __init__(self, app: App, user: UserRef) -> None:
        super().__init__(timeout=120)
        self.app = app
        self.user = user

    @discord.ui.button(label="Erase my data", style=discord.ButtonStyle.danger,
                       custom_id="img2img:s:forget")
    async def erase(self, interaction: discord.Interaction,
                    button: discord.ui.Button[ForgetView]) -> None:
        count = await self.app.storage.forget_user(self.user.key)
        self.stop()
        await interaction.response.edit_message(
            content=f"Done: your settings and the prompts of {plural(count, 'image')} are erased.",
            view=None)

    @discord.ui.button(label="Keep", style=discord.ButtonStyle.secondary,
                       custom_id="img2img:s:keep")
    async def keep(self, interaction: discord.Interaction,
                   button: discord.ui.Button[ForgetView]) -> None:
        self.stop()
        await interaction.response.edit_message(content="Nothing was erased.", view=None)

    async def on_error(self, interaction: discord.Interaction, error: Exception,
                       item: discord.ui.Item[ForgetView]) -> None:
        await handle_error(interaction, error)


def register(bot: commands.Bot, app: App) -> None:
    """Add the user commands to the bot's tree."""
    tree = bot.tree

    @tree.command(name="credits", description="Your credit balance and recent movements")
    async def credits(interaction: discord.Interaction) -> None:
        if not app.config.credits.enabled:
            await interaction.response.send_message("Credits are off here: images are free.",
                                                    ephemeral=True)
            return
        user = user_of(interaction)
        balance = await app.service.credits.balance(user)
        lines = [describe_entry(e) for e in await app.service.credits.history(user, 10)]
        text = f"**Balance: {plural(balance, 'credit')}**"
        if lines:
            text += "\nRecent:\n" + bullet_list(lines)
        await interaction.response.send_message(text, ephemeral=True)

    settings = app_commands.Group(name="settings", description="Your personal defaults")

    @settings.command(name="show", description="Show your personal defaults")
    async def settings_show(interaction: discord.Interaction) -> None:
        lines = await app.preferences.describe_user(user_of(interaction))
        await interaction.response.send_message("Your defaults:\n" + bullet_list(lines),
                                                ephemeral=True)

    @settings.command(name="set", description="Set one of your defaults")
    @app_commands.describe(key="which setting", value="its new value")
    @app_commands.choices(key=KEYS)
    async def settings_set(interaction: discord.Interaction, key: str, value: str) -> None:
        message = await app.preferences.set_user(user_of(interaction), key, value)
        await interaction.response.send_message(message, ephemeral=True)

    @settings_set.autocomplete("value")
    async def settings_value(interaction: discord.Interaction,
                             current: str) -> list[app_commands.Choice[str]]:
        return value_choices(app, interaction.namespace.key, current)

    @settings.command(name="reset", description="Reset one default, or all of them")
    @app_commands.describe(key="leave empty to reset everything")
    @app_commands.choices(key=KEYS)
    async def settings_reset(interaction: discord.Interaction, key: str | None = None) -> None:
        message = await app.preferences.reset_user(user_of(interaction), key)
        await interaction.response.send_message(message, ephemeral=True)

    tree.add_command(settings)

    @tree.command(name="styles", description="The style presets you can use")
    async def styles(interaction: discord.Interaction) -> None:
        lines = styles_lines(app.config.styles) or ["(none configured)"]
        await interaction.response.send_message("Styles:\n" + bullet_list(lines), ephemeral=True)

    @tree.command(name="providers", description="The image backends and what they cost")
    async def providers(interaction: discord.Interaction) -> None:
        lines = providers_lines(app.providers, app.service.credits) or ["(none configured)"]
        await interaction.response.send_message("Backends:\n" + bullet_list(lines),
                                                ephemeral=True)

    @tree.command(name="cancel", description="Cancel your newest unfinished image")
    async def cancel(interaction: discord.Interaction) -> None:
        if not await first_time(interaction):  # a re-delivery must not cancel a second job
            return
        handle = await app.service.cancel_latest(user_of(interaction).key)
        if handle is None:
            text = "You have no image in progress."
        elif handle.price:
            text = f"Cancelled and refunded {plural(handle.price, 'credit')}."
        else:
            text = "Cancelled."
        await interaction.response.send_message(text, ephemeral=True)

    @tree.command(name="forget", description="Erase your prompts and personal settings")
    async def forget(interaction: discord.Interaction) -> None:
        await interaction.response.send_message(FORGET_QUESTION, ephemeral=True,
                                                view=ForgetView(app, user_of(interaction)))
