"""Ways to ask: ``/img2img``, the "Transform with img2img" context menu, the result buttons.

Each claims the interaction (``first_time``: a re-delivery is ignored), defers it at once, gets
the image, and hands the request to the core; the job is then shown by ``bot.following``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from adapters.discord.delivery import Reply
from adapters.discord.inputs import (
    ONLY_DISCORD,
    ImageSource,
    download,
    find_image,
    hosted_by_discord,
    rerun_input,
)
from adapters.discord.interactions import Interaction, Suggested, chat_of, first_time, user_of
from adapters.discord.locale import text
from adapters.discord.policy import channel_allows
from adapters.discord.replies import guarded, mark_placeholder
from adapters.discord.stored import Asked, interaction_origin
from bot.app import App
from bot.errors import ImageError, QueueFull, UserError
from bot.i18n import Msg, t
from bot.jobs import GenerationRequest
from bot.limits import MAX_CFG, MAX_SAMPLES, MAX_SEED, MAX_STEPS, MIN_STEPS
from bot.models import ChatRef
from bot.options import Overrides, overrides_from, parse_value
from bot.parser import parse_caption
from bot.rerun import Action

IMG2IMG_OPTIONS = ("image", "prompt", "strength", "steps", "seed", "cfg", "negative", "size", "ar",
                   "style", "provider", "model", "count")
STYLES = Suggested(lambda interaction: sorted(interaction.client.app.config.styles))
PROVIDERS = Suggested(lambda interaction: interaction.client.app.providers)
# The models of the provider chosen so far, else of the default one.
MODELS = Suggested(lambda interaction: interaction.client.app.models(str(
    interaction.namespace.provider or interaction.client.app.config.defaults.provider)))


async def begin(app: App, interaction: Interaction) -> ChatRef | None:
    """Claim the interaction and defer it at once; the server (or DM) whose policy applies, NSFW
    only where the channel allows it (None: Discord delivered the interaction before)."""
    if not await first_time(interaction):
        return None
    await interaction.response.defer(thinking=True)
    mark_placeholder(interaction)
    return chat_of(interaction, nsfw_channel=await channel_allows(app, interaction))


async def run(app: App, interaction: Interaction, *, chat: ChatRef, image: bytes, prompt: str,
              overrides: Overrides, image_url: str, **origin: str) -> None:
    """Submit the request as the interaction's user and show the job on the deferred reply.

    The job keeps where its image came from (``image_url``, ``origin``: for reruns) and what
    another process needs to answer the interaction (``stored.interaction_origin``).
    """
    if interaction.client.live.stopping:
        raise QueueFull(msg=Msg("dc-bot-restarting"))
    handle = await app.submit(GenerationRequest(
        user=user_of(interaction), chat=chat, image=image, prompt=prompt, overrides=overrides,
        origin={**interaction_origin(interaction), "image_url": image_url, **origin}))
    # The result goes through the courier, which uses this reply while it is shown.
    await interaction.client.live.follow(handle, Reply(Asked.live(interaction), handle.id),
                                         shown=True)


async def rerun(app: App, interaction: Interaction, action: Action, job_id: str) -> None:
    """A result button: the stored request again, as asked, by whoever pressed it."""
    if (chat := await begin(app, interaction)) is None:
        return
    plan = await app.plan_rerun(job_id, action, chat=chat,
                                place={"channel_id": str(interaction.channel_id)})
    if plan is None:
        raise UserError(msg=Msg("dc-request-gone"))
    image, url = await rerun_input(app, interaction, plan)
    await run(app, interaction, chat=chat, image=image, prompt=plan.prompt,
              overrides=plan.overrides, image_url=url, after=job_id, **plan.input_origin)


class TransformModal(discord.ui.Modal):
    """Asks for the prompt (options like --steps allowed) and the strength."""

    def __init__(self, app: App, source: ImageSource, message: discord.Message,
                 interaction_id: int) -> None:
        # Modals are stored by custom_id alone: make it unique to this opening.
        super().__init__(title=t("dc-menu-transform"), custom_id=f"img2img:m:{interaction_id}",
                         timeout=900)
        # Built here, not as class attributes, so the labels are in the reader's language.
        self.prompt: discord.ui.TextInput[TransformModal] = discord.ui.TextInput(
            label=t("field-prompt"), custom_id="prompt", style=discord.TextStyle.paragraph,
            max_length=2000, placeholder=t("dc-modal-example"))
        self.strength: discord.ui.TextInput[TransformModal] = discord.ui.TextInput(
            label=t("dc-modal-strength"), custom_id="strength", required=False, max_length=6,
            placeholder="0.6")
        self.add_item(self.prompt).add_item(self.strength)
        self.app, self.source, self.message = app, source, message

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await guarded(interaction, self._submit(interaction))

    async def _submit(self, interaction: Interaction) -> None:
        if (chat := await begin(self.app, interaction)) is None:
            return
        parsed = parse_caption(self.prompt.value)
        overrides = parsed.overrides.merged(overrides_from({"strength": self.strength.value}))
        image = await download(self.app, self.source)
        await run(self.app, interaction, chat=chat, image=image, prompt=parsed.prompt,
                  overrides=overrides, image_url=self.source.url,
                  source_channel_id=str(self.message.channel.id),
                  source_message_id=str(self.message.id))


class OptionValue(app_commands.Transformer[discord.Client]):
    """An option read as its caption flag is (``bot.options``): a bad value is refused, through
    the tree's error handler, before the command claims, defers or charges anything."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def transform(self, interaction: discord.Interaction[Any], value: Any, /) -> Any:
        return parse_value(self.name, str(value))[1]


class RequestCommands(commands.Cog):
    """/img2img, the "Transform with img2img" context menu, and the result buttons' reruns."""

    def __init__(self, bot: commands.Bot, app: App) -> None:
        self.bot, self.app = bot, app
        # discord.py has no context-menu decorator for cog methods: built here, added on load.
        self.menu = app_commands.ContextMenu(name=text("dc-menu-transform"),
                                             callback=self.transform)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    @app_commands.command(name="img2img", description=text("dc-cmd-img2img"))
    @app_commands.describe(**{name: text(f"dc-opt-{name}") for name in IMG2IMG_OPTIONS})
    async def img2img(self, interaction: Interaction, image: discord.Attachment,
                      prompt: app_commands.Range[str, 1, 2000],
                      strength: app_commands.Range[float, 0.0, 1.0] | None = None,
                      steps: app_commands.Range[int, MIN_STEPS, MAX_STEPS] | None = None,
                      seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
                      cfg: app_commands.Range[float, 0.0, MAX_CFG] | None = None,
                      negative: app_commands.Range[str, 1, 1000] | None = None,
                      size: app_commands.Transform[tuple[int, int], OptionValue("size")]
                      | None = None,
                      ar: app_commands.Transform[tuple[int, int], OptionValue("ar")] | None = None,
                      style: app_commands.Transform[str, STYLES] | None = None,
                      provider: app_commands.Transform[str, PROVIDERS] | None = None,
                      model: app_commands.Transform[str, MODELS] | None = None,
                      count: app_commands.Range[int, 1, MAX_SAMPLES] | None = None) -> None:
        if (chat := await begin(self.app, interaction)) is None:
            return
        overrides = replace(overrides_from({
            "strength": strength, "steps": steps, "seed": seed, "cfg": cfg, "negative": negative,
            "style": style, "provider": provider, "model": model, "count": count}),
            size=size, aspect=ar)
        data = await download(self.app, ImageSource.of(image))
        await run(self.app, interaction, chat=chat, image=data, prompt=prompt,
                  overrides=overrides, image_url=image.url)

    async def transform(self, interaction: Interaction, message: discord.Message) -> None:
        if not await first_time(interaction):
            return
        source = find_image(message, Msg("dc-no-image"))
        if not hosted_by_discord(self.app, source.url):
            raise ImageError(msg=ONLY_DISCORD)  # before the modal: nothing to fill in or spend
        await interaction.response.send_modal(TransformModal(self.app, source, message,
                                                             interaction.id))

    @commands.Cog.listener()
    async def on_img2img_rerun(self, interaction: Interaction, action: Action,
                               job_id: str) -> None:
        await guarded(interaction, rerun(self.app, interaction, action, job_id))
