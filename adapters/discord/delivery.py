"""A job on Discord: the deferred reply shows its progress with a Cancel button, then its result.

Progress edits are throttled to one per ``discord.progress_interval``. If someone deletes the
message, progress stops and the result comes as a new follow-up; once the interaction token has
expired (15 minutes), the result is posted in the channel, mentioning the requester.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Callable
from typing import Any

import discord

from adapters.discord.replies import mark_placeholder
from adapters.discord.state import app_of, live_of
from adapters.discord.stored import AnyInteraction, StoredInteraction
from adapters.discord.views import cancel_view, result_view
from bot.errors import DeliveryRefused
from bot.events import Detached, Done, Failed, JobEvent, Queued
from bot.i18n import current_locale, t
from bot.imaging import fit_for_delivery, off_loop
from bot.jobs import JobHandle
from bot.models import ImageData
from bot.presenter import position_worth_showing, result_fields, status_line

log = logging.getLogger(__name__)
EMBED_COLOUR = discord.Colour(0x5865F2)


class Reply:
    """The interaction's deferred reply, edited at most once per ``interval`` seconds (the
    interaction as received, or as stored with its job by the process that received it)."""

    def __init__(self, interaction: AnyInteraction, interval: float,
                 view: discord.ui.View | None, *, hold: float = 0.0) -> None:
        self.interaction = interaction
        self.interval = interval
        self.view: discord.ui.View | None = view
        self.gone = False  # deleted by someone
        # the interaction token no longer works
        self.expired = isinstance(interaction, StoredInteraction) and not interaction.usable
        self._wanted: str | None = None
        self._shown: str | None = None
        # No edit in the first ``hold`` seconds: a job done by then costs only its result.
        self._last = asyncio.get_running_loop().time() + hold - interval if hold else float("-inf")
        self._task: asyncio.Task[None] | None = None
        self.message_id: int | None = None  # of the last successful edit
        self.locale = current_locale.get()  # for the shutdown notice, rendered outside the task

    def show(self, text: str) -> None:
        """Ask for ``text`` to be shown; the edit happens now or when the interval allows."""
        self._wanted = text
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush(), name="discord-progress")

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self.usable and self._wanted is not None and self._wanted != self._shown:
            wait = self._last + self.interval - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            text = self._wanted
            self._last = loop.time()
            extra = {"view": self.view} if self.view is not None else {}
            if not await self.edit(content=text, **extra):
                return
            self._shown, self.view = text, None

    @property
    def usable(self) -> bool:
        return not (self.gone or self.expired)

    async def edit(self, **fields: Any) -> bool:
        """Edit the reply; False (and the reason noted) when that is no longer possible."""
        try:
            message = await self.interaction.edit_original_response(**fields)
        except discord.NotFound:
            self.gone = True
        except discord.HTTPException as exc:
            if exc.status == 401:
                self.expired = True
            else:
                log.warning("editing a discord reply failed: %s %s", exc.status, exc.code)
            return False
        if isinstance(self.interaction, discord.Interaction):
            mark_placeholder(self.interaction, False)
        self.message_id = message.id
        return True

    async def close(self) -> None:
        """Stop any pending progress edit (the final state follows)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def final(self, *, content: str, embed: discord.Embed | None = None,
                    files: Callable[[], list[discord.File]] | None = None,
                    view: discord.ui.View | None = None) -> str:
        """Show the job's end: in the reply, else a new follow-up, else in the channel;
        returns the message id, or raises ``DeliveryRefused`` if even the channel refused."""
        interaction = self.interaction
        attachments = files() if files else []
        if self.usable and await self.edit(content=content, embed=embed, attachments=attachments,
                                           view=view):
            return str(self.message_id)
        extra: dict[str, Any] = {"embed": embed} if embed is not None else {}
        if view is not None:
            extra["view"] = view
        if not self.expired:
            try:
                sent = await interaction.followup.send(
                    content=content, files=files() if files else [], wait=True, **extra)
                return str(sent.id)
            except discord.HTTPException as exc:
                log.info("discord follow-up failed (%s %s); posting in the channel",
                         exc.status, exc.code)
        channel = interaction.client.get_partial_messageable(
            interaction.channel_id or 0, guild_id=interaction.guild_id)
        try:
            message = await channel.send(
                content=" ".join(filter(None, (interaction.user.mention, content))),
                files=files() if files else [],
                allowed_mentions=discord.AllowedMentions(users=[interaction.user]), **extra)
        except discord.HTTPException as exc:
            log.warning("could not deliver a job's end on discord: %s %s", exc.status, exc.code)
            raise refusal(exc) from exc
        return str(message.id)


def refusal(exc: discord.HTTPException) -> DeliveryRefused:
    """403 (no access) and 404 (channel gone) will not change; 429 and 5xx may."""
    return DeliveryRefused(f"{exc.status} {exc.code}", permanent=exc.status in (400, 403, 404))


def progress_text(event: JobEvent, notices: tuple[str, ...]) -> str:
    return "\n".join([status_line(event), *(f"ℹ️ {notice}" for notice in notices)])


def result_embed(done: Done, prompt: str, filename: str, requester: str) -> discord.Embed:
    """The parameters that go with every result (the prompt as the description)."""
    embed = discord.Embed(description=prompt[:4000], colour=EMBED_COLOUR)
    for name, value in result_fields(done, prompt)[1:]:  # the prompt is the description
        embed.add_field(name=name, value=value[:1024] or "-", inline=True)
    embed.set_image(url=f"attachment://{filename}")
    embed.set_footer(text=t("dc-requested-by", name=requester))
    return embed


def _filename(done: Done, image: ImageData, index: int) -> str:
    seed = done.seed if done.seed is not None else "result"
    suffix = f"-{index + 1}" if len(done.images) > 1 else ""
    return f"img2img-{seed}{suffix}.{image.extension}"


async def fitted(done: Done, max_bytes: int) -> list[tuple[str, bytes]]:
    """The result images, each shrunk or re-encoded to fit the attachment limit."""
    out = []
    for index, image in enumerate(done.images):
        small = await off_loop(fit_for_delivery, image, max_bytes=max_bytes)
        out.append((_filename(done, small, index), small.data))
    return out


async def show_result(reply: Reply, job_id: str, done: Done, prompt: str) -> str:
    interaction = reply.interaction
    images = await fitted(done, interaction.filesize_limit)

    def files() -> list[discord.File]:
        return [discord.File(io.BytesIO(data), filename=name) for name, data in images]

    embed = result_embed(done, prompt, images[0][0], interaction.user.display_name)
    content = "\n".join(f"ℹ️ {notice}" for notice in done.notices)
    return await reply.final(content=content, embed=embed, files=files, view=result_view(job_id))


async def show_end(reply: Reply, text: str) -> None:
    """A job's end without an image (nothing to confirm: the refund is already booked)."""
    with contextlib.suppress(DeliveryRefused):
        await reply.final(content=text, view=None)


async def follow(interaction: AnyInteraction, handle: JobHandle, prompt: str) -> None:
    """Render the job's events on the interaction's deferred reply until it ends; the result
    itself goes through the courier, which uses this reply while it is shown."""
    app = app_of(interaction)
    live = live_of(interaction.client)
    interval = app.config.discord.progress_interval if app.config.discord else 2.0
    after = app.config.discord.status_after if app.config.discord else 1.0
    reply = Reply(interaction, interval, cancel_view(handle.id), hold=after)
    shown_position: int | None = None
    with live.showing(handle.id, reply):
        try:
            async for event in handle.events():
                if isinstance(event, Queued):
                    if not position_worth_showing(shown_position, event.position):
                        continue  # the bucket is better spent on results than on small steps
                    shown_position = event.position
                if isinstance(event, Done):
                    await reply.close()
                elif isinstance(event, Failed):
                    await reply.close()
                    await show_end(reply, status_line(event))
                elif isinstance(event, Detached):
                    await reply.close()
                    if event.notice:
                        await show_end(reply, event.notice)
                else:
                    reply.show(progress_text(event, handle.notices))
        finally:
            await reply.close()
