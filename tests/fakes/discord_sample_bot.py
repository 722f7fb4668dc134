"""A small real discord.py bot the fake Discord's self-tests drive (not the project's adapter)."""

from __future__ import annotations

import io
import re
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands
from PIL import Image, ImageOps

STYLES = [f"style-{i}" for i in range(40)] + ["anime", "analog film"]


def inverted_png(data: bytes) -> bytes:
    out = io.BytesIO()
    ImageOps.invert(Image.open(io.BytesIO(data)).convert("RGB")).save(out, "PNG")
    return out.getvalue()


class ResultView(discord.ui.View):
    """A persistent view: fixed custom_ids, no timeout, registered in setup_hook."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Again", emoji="🔁", style=discord.ButtonStyle.primary,
                       custom_id="result:again")
    async def again(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await interaction.response.edit_message(content=f"again by {interaction.user.id}",
                                                view=self)


class DeleteButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"del:(?P<owner>\d+)"):
    """Deletes the result; only the requester (encoded in the custom_id) may press it."""

    def __init__(self, owner: int) -> None:
        super().__init__(discord.ui.Button(label="Delete", emoji="🗑", custom_id=f"del:{owner}",
                                           style=discord.ButtonStyle.danger))
        self.owner = owner

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> DeleteButton:
        return cls(int(match["owner"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        if interaction.user.id != self.owner:
            await interaction.response.send_message("Only the requester can delete this.",
                                                    ephemeral=True)
            return
        await interaction.response.defer()
        await interaction.delete_original_response()


class ConfirmView(discord.ui.View):
    """A plain (non-persistent) view: dispatch relies on the message id the callback returned."""

    @discord.ui.button(label="Yes", style=discord.ButtonStyle.success)
    async def yes(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await interaction.response.edit_message(content="confirmed", view=None)


class PromptModal(discord.ui.Modal, title="Remix with img2img"):
    prompt: discord.ui.TextInput[Any] = discord.ui.TextInput(label="Prompt", custom_id="prompt")
    strength: discord.ui.TextInput[Any] = discord.ui.TextInput(
        label="Strength", custom_id="strength", default="0.6", required=False)
    style: discord.ui.Label[Any] = discord.ui.Label(
        text="Style", component=discord.ui.TextInput(custom_id="style", required=False))

    def __init__(self, target: discord.Message) -> None:
        super().__init__(custom_id="img2img:modal")
        self.target = target

    async def on_submit(self, interaction: discord.Interaction) -> None:
        style = self.style.component
        assert isinstance(style, discord.ui.TextInput)
        name = self.target.attachments[0].filename if self.target.attachments else \
            self.target.embeds[0].thumbnail.url
        await interaction.response.send_message(
            f"{self.prompt.value} @ {self.strength.value} style={style.value} on {name}")


Bot = commands.Bot | commands.AutoShardedBot


class RecordingTree(app_commands.CommandTree[Any]):
    """Keeps every app-command error (unwrapped) instead of logging it."""

    def __init__(self, client: discord.Client, **options: Any) -> None:
        super().__init__(client, **options)
        self.errors: list[Exception] = []

    async def on_error(self, interaction: discord.Interaction,
                       error: app_commands.AppCommandError) -> None:
        self.errors.append(getattr(error, "original", error))


def make_bot(cls: type[Bot] = commands.Bot, *, sync: bool = True,
             intents: discord.Intents | None = None) -> Bot:
    """The bot: a few commands covering each kind of interaction the fake must serve."""
    bot = cls(command_prefix="!", intents=intents or discord.Intents.default(),
              guild_ready_timeout=0.05, tree_cls=RecordingTree)
    tree = bot.tree

    @tree.command(name="img2img", description="Transform an image")
    async def img2img(interaction: discord.Interaction, image: discord.Attachment, prompt: str,
                      style: str | None = None) -> None:
        await interaction.response.defer(thinking=True)
        result = inverted_png(await image.read())
        nsfw = getattr(interaction.channel, "nsfw", None)
        await interaction.followup.send(
            f"{prompt} | style={style} | nsfw={nsfw} | member="
            f"{isinstance(interaction.user, discord.Member)} | "
            f"limit={interaction.filesize_limit}",
            file=discord.File(io.BytesIO(result), "result.png"))

    @img2img.autocomplete("style")
    async def style_choices(interaction: discord.Interaction, current: str,
                            ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=s, value=s) for s in STYLES if current in s][:25]

    @tree.command(name="progress", description="Show progress, then a result with buttons")
    async def progress(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        await interaction.edit_original_response(content="50%")
        view = ResultView()
        view.add_item(DeleteButton(interaction.user.id))
        embed = discord.Embed(title="Result", description="a cat")
        embed.add_field(name="seed", value="42")
        file = discord.File(io.BytesIO(b"\x89PNG fake"), "result.png")
        await interaction.edit_original_response(content="done", embed=embed, view=view,
                                                  attachments=[file])

    @tree.command(name="confirm", description="Ask for confirmation")
    async def confirm(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Sure?", view=ConfirmView(timeout=30))
        if interaction.guild is None:
            await interaction.channel.send("a plain DM message")  # type: ignore[union-attr]

    @tree.command(name="big", description="Send a file above the attachment limit, then shrink")
    async def big(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        try:
            await interaction.followup.send(file=discord.File(
                io.BytesIO(b"x" * (interaction.filesize_limit + 1)), "big.png"))
        except discord.HTTPException as exc:
            await interaction.followup.send(f"shrunk after {exc.status}/{exc.code}",
                                            file=discord.File(io.BytesIO(b"x" * 10), "small.png"))

    @tree.command(name="gone", description="Edit a reply after deleting it")
    async def gone(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("soon gone")
        await interaction.delete_original_response()
        try:
            await interaction.edit_original_response(content="back?")
        except discord.NotFound as exc:
            await interaction.followup.send(f"NotFound {exc.code}", ephemeral=True)

    settings = app_commands.Group(name="settings", description="Personal defaults")

    @settings.command(name="set", description="Set a default")
    async def settings_set(interaction: discord.Interaction, key: str, value: str) -> None:
        await interaction.response.send_message(f"{key}={value}", ephemeral=True)

    admin = app_commands.Group(name="img2img-admin", description="Server policy",
                               default_permissions=discord.Permissions(manage_guild=True),
                               guild_only=True)

    @admin.command(name="set", description="Set a server policy value")
    async def admin_set(interaction: discord.Interaction, key: str, value: str) -> None:
        if not interaction.permissions.manage_guild:  # checked again server-side
            await interaction.response.send_message("You need Manage Server.", ephemeral=True)
            return
        await interaction.response.send_message(f"server {key}={value}")

    @app_commands.context_menu(name="Remix with img2img")
    async def transform(interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.send_modal(PromptModal(message))

    tree.add_command(settings)
    tree.add_command(admin)
    tree.add_command(transform)

    async def setup_hook() -> None:
        bot.add_view(ResultView())
        bot.add_dynamic_items(DeleteButton)
        if sync:
            await tree.sync()

    bot.setup_hook = setup_hook  # type: ignore[method-assign]
    return bot
