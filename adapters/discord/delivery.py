"""A job on Discord: the deferred reply shows its status with a Cancel button, then its result.

``bot.following`` times the status (``[discord] status_after``, ``progress_interval``).
Whichever process runs the job delivers it (``DiscordCourier``): in the interaction's reply
(the live one where this process received it, else its stored webhook); if someone deleted
the reply, as a new follow-up; once the interaction token has expired (15 minutes), in the
channel with the bot token, mentioning the requester.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import discord

from adapters.discord.replies import mark_placeholder
from adapters.discord.stored import Asked
from adapters.discord.views import CANCEL, RESULT, job_view
from bot.couriers import JobRecord
from bot.errors import DeliveryRefused
from bot.events import Done
from bot.i18n import t
from bot.jobs import JobHandle
from bot.presenter import result_fields
from bot.result_files import MediaLimits, result_files
from bot.status import Edit, Surface

if TYPE_CHECKING:  # the bot's module builds the courier
    from adapters.discord.client import Img2ImgBot

log = logging.getLogger(__name__)
ORIGINAL = cast(int, "@original")  # Discord's id for an interaction's first reply
EMBED_COLOUR = discord.Colour(0x5865F2)


class Reply(Surface):
    """``bot.status.Surface`` on Discord: the interaction's deferred reply (answered by the
    process that received the interaction or by any other, ``stored.Asked``), which shows the
    status from the start and then the result. It needs no chat action (the deferred reply says
    "thinking…" by itself), has nothing to delete (the result takes the status's place) and no
    send limits of its own (discord.py waits for the buckets; the core spares progress)."""

    def __init__(self, asked: Asked, job_id: str | None = None) -> None:
        self.asked = asked
        self.view = job_view(job_id, CANCEL) if job_id else None  # the Cancel button
        self.gone = False  # deleted by someone
        self.expired = not asked.usable  # the interaction token no longer works
        self.message_id: int | None = None  # of the last successful edit

    async def send(self, text: str, *, cancel: bool) -> str | None:
        """A new message, once the reply is gone: a follow-up, else in the channel."""
        with contextlib.suppress(DeliveryRefused):
            return await self.final(content=text, view=self.view if cancel else None)
        return None

    async def edit(self, text: str, *, cancel: bool) -> Edit:
        if self.usable and await self.change(content=text, view=self.view if cancel else None):
            return Edit.SHOWN
        return Edit.FAILED if self.usable else Edit.GONE

    @property
    def usable(self) -> bool:
        return not (self.gone or self.expired)

    async def change(self, **fields: Any) -> bool:
        """Edit the reply; False (and the reason noted) when that is no longer possible."""
        try:
            message = await self.asked.webhook.edit_message(ORIGINAL, **fields)
        except discord.HTTPException as exc:
            if isinstance(exc, discord.NotFound):
                self.gone = True
            elif exc.status == 401:
                self.expired = True
            else:
                log.warning("editing a discord reply failed: %s %s", exc.status, exc.code)
            return False
        mark_placeholder(self.asked, False)
        self.message_id = message.id
        return True

    async def final(self, *, content: str, embed: discord.Embed | None = None,
                    files: Callable[[], list[discord.File]] = list,
                    view: discord.ui.View | None = None) -> str:
        """Show the job's end: in the reply, else a new follow-up, else in the channel;
        returns the message id, or raises ``DeliveryRefused`` if even the channel refused.
        ``files`` makes the attachments afresh for each try (a sent ``File`` is spent)."""
        if self.usable and await self.change(content=content, embed=embed,
                                             attachments=files(), view=view):
            return str(self.message_id)
        extra: dict[str, Any] = {key: value for key, value in (("embed", embed), ("view", view))
                                 if value is not None}
        if not self.expired:
            try:
                sent = await self.asked.webhook.send(content=content, files=files(), wait=True,
                                                     **extra)
                return str(sent.id)
            except discord.HTTPException as exc:
                log.info("discord follow-up failed (%s %s); posting in the channel",
                         exc.status, exc.code)
        return await in_channel(self.asked, content, files=files(), **extra)


async def in_channel(asked: Asked, content: str, **fields: Any) -> str:
    """Post in the interaction's channel with the bot token, to its requester (the only one
    mentioned); the message id, or ``DeliveryRefused``."""
    try:
        message = await asked.channel.send(
            content=" ".join(filter(None, (f"<@{asked.requester.id}>", content))),
            allowed_mentions=discord.AllowedMentions(users=[asked.requester]), **fields)
    except discord.HTTPException as exc:
        log.warning("could not deliver a job's end on discord: %s %s", exc.status, exc.code)
        # 403 (no access) and 404 (channel gone) will not change; 429 and 5xx may.
        raise DeliveryRefused(f"{exc.status} {exc.code}",
                              permanent=exc.status in (400, 403, 404)) from exc
    return str(message.id)


def result_embed(done: Done, prompt: str, filename: str, requester: str) -> discord.Embed:
    """The parameters that go with every result (the prompt as the description)."""
    embed = discord.Embed(description=prompt[:4000], colour=EMBED_COLOUR)
    for name, value in result_fields(done, prompt)[1:]:  # the prompt is the description
        embed.add_field(name=name, value=value[:1024] or "-", inline=True)
    embed.set_image(url=f"attachment://{filename}")
    embed.set_footer(text=t("dc-requested-by", name=requester))
    return embed


async def show_result(reply: Reply, job_id: str, done: Done, prompt: str) -> str:
    images = await result_files(done, MediaLimits(reply.asked.filesize_limit), "result")

    def files() -> list[discord.File]:
        return [discord.File(io.BytesIO(f.image.data), filename=f.filename) for f in images]

    embed = result_embed(done, prompt, images[0].filename, reply.asked.requester_name)
    content = "\n".join(f"ℹ️ {notice}" for notice in done.notices)
    return await reply.final(content=content, embed=embed, files=files,
                             view=job_view(job_id, *RESULT))


class DiscordCourier:
    """``bot.couriers.Courier`` for Discord; needs only the REST API (no gateway)."""

    def __init__(self, client: Img2ImgBot) -> None:
        self.client = client

    async def deliver(self, job: JobRecord, done: Done) -> str:
        live = self.client.live
        await live.hold(job.id)
        reply = live.surface(job.id)
        if not isinstance(reply, Reply):
            reply = Reply(self._asked(job))
        return await show_result(reply, job.id, done, str(job.params.get("prompt", "")))

    async def notify(self, job: JobRecord, text: str) -> None:
        await in_channel(self._asked(job), text)

    def _asked(self, job: JobRecord) -> Asked:
        asked = Asked.stored(self.client, job)
        if asked is None:
            raise DeliveryRefused("the job does not say where it was asked", permanent=True)
        return asked

    def resume(self, handle: JobHandle, job: JobRecord) -> None:
        """Show a job accepted elsewhere on its interaction's reply (while the token works;
        after that its end comes as a channel message)."""
        asked = Asked.stored(self.client, job)
        if asked is not None:
            self.client.live.start(handle, Reply(asked, handle.id), shown=True)
