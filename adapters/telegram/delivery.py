"""Telegram's side of a job in the chat, by the Bot API: the status message
(``bot.status.Surface``), the result, and ``TelegramCourier``, which delivers results, notices
and jobs resumed after a restart from what the stored job says."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
)
from aiogram.types import BufferedInputFile, ReplyParameters

from adapters.telegram.callbacks import cancel_keyboard, result_keyboard
from adapters.telegram.replies import esc
from adapters.telegram.transport import BotSession
from bot.app import App
from bot.captions import NOTICE, fit_caption, utf16_len
from bot.couriers import JobRecord, asked_pref, origin_notices
from bot.errors import DeliveryRefused
from bot.events import Done
from bot.following import Following
from bot.jobs import JobHandle
from bot.models import UserRef
from bot.result_files import MediaLimits, result_files
from bot.status import Edit

log = logging.getLogger(__name__)

CAPTION_LIMIT = 1024
# A photo: 10 MB, width + height 10,000, ratio 20; a document: 50 MB.
MEDIA = MediaLimits(file_bytes=50 * 2**20, photo_bytes=10 * 2**20, photo_side_sum=10_000,
                    photo_ratio=20)
ACTION_EVERY = 4.5  # Telegram shows a chat action for 5 s


@dataclass(frozen=True, slots=True)
class Target:
    """Where a job's messages go: the chat, and the message they reply to."""

    chat_id: int
    reply_to: int | None

    def reply(self) -> ReplyParameters | None:
        # Sent anyway if that message is gone (the bot's default).
        return None if self.reply_to is None else ReplyParameters(message_id=self.reply_to)


class ChatStatus:
    """``bot.status.Surface`` on Telegram: the status message replying to the request."""

    action_every: float | None = ACTION_EVERY

    def __init__(self, bot: Bot, target: Target, job_id: str,
                 message_id: int | None = None) -> None:
        self.bot, self.target, self.job_id = bot, target, job_id
        self.message_id = message_id  # a status message shown before a restart, if any
        self.limits = bot.session.slots.limits if isinstance(bot.session, BotSession) else None

    async def send(self, text: str, *, cancel: bool) -> str | None:
        try:
            sent = await self.bot.send_message(
                self.target.chat_id, esc(text), reply_parameters=self.target.reply(),
                reply_markup=cancel_keyboard(self.job_id) if cancel else None)
        except TelegramAPIError as exc:
            log.warning("progress message not sent: %s", exc)
            return None
        self.message_id = sent.message_id
        return str(sent.message_id)

    async def edit(self, text: str, *, cancel: bool) -> Edit:
        try:
            await self.bot.edit_message_text(
                text=esc(text), chat_id=self.target.chat_id, message_id=self.message_id,
                reply_markup=cancel_keyboard(self.job_id) if cancel else None)
        except TelegramBadRequest as exc:
            if "not modified" in exc.message:
                return Edit.SHOWN
            # Deleted by the user or too old to edit: carry on without it.
            log.info("progress message %s can no longer be edited: %s", self.message_id,
                     exc.message)
            return Edit.GONE
        except TelegramAPIError as exc:
            log.warning("progress edit failed: %s", exc)
            return Edit.FAILED
        return Edit.SHOWN

    async def delete(self) -> None:
        if self.message_id is not None:
            with contextlib.suppress(TelegramAPIError):
                await self.bot.delete_message(self.target.chat_id, self.message_id)

    async def act(self) -> None:
        try:
            await self.bot.send_chat_action(self.target.chat_id, "upload_photo")
        except TelegramAPIError as exc:
            log.info("chat action failed: %s", exc)

    def may_send(self) -> bool:
        return self.limits is None or self.limits.status_may_send(self.target.chat_id)


def show(following: Following, bot: Bot, handle: JobHandle, target: Target,
         notices: tuple[str, ...] = ()) -> None:
    """Follow the job in the chat (on its status message of before a restart, if any)."""
    status_id = handle.origin.get("status_message_id")
    surface = ChatStatus(bot, target, handle.id, int(status_id) if status_id else None)
    following.start(handle, surface, notices=notices, shown=status_id is not None)


def result_caption(done: Done, prompt: str, notices: tuple[str, ...]) -> str:
    """HTML caption whose visible text stays within Telegram's 1,024 characters."""
    caption = fit_caption(done, prompt, notices, CAPTION_LIMIT, utf16_len)
    return "\n".join([*(f"<b>{esc(name)}:</b> {esc(value)}" for name, value in caption.fields),
                      *(f"{NOTICE}{esc(n)}" for n in caption.notices)])


async def send_result(bot: Bot, app: App, job: JobRecord, done: Done, target: Target) -> int:
    """Each image as a photo replying to the request (a document when too big for one, and
    also as a file where the user asked for that); returns the first message's id, or raises
    ``DeliveryRefused``."""
    caption = result_caption(done, str(job.params.get("prompt", "")),
                             origin_notices(job) + done.notices)
    markup = result_keyboard(job.id)
    also_file = asked_pref(job, "file")
    if also_file is None:  # a job stored before its prefs were
        also_file = await app.preferences.user_pref(UserRef.parse(job.user_key), "file")
    first: int | None = None
    for index, out in enumerate(await result_files(done, MEDIA, job.id[:8])):
        text = caption if index == 0 else None
        file = BufferedInputFile(out.image.data, out.filename)
        try:
            if out.as_photo:
                sent = await bot.send_photo(target.chat_id, file, caption=text,
                                            reply_markup=markup, reply_parameters=target.reply())
                first = first or sent.message_id
            if not out.as_photo or also_file:
                sent = await bot.send_document(
                    target.chat_id, file, caption=None if out.as_photo else text,
                    reply_markup=None if out.as_photo else markup,
                    reply_parameters=target.reply())
                first = first or sent.message_id
        except TelegramAPIError as exc:
            log.warning("result of job %s not delivered: %s", job.id, exc)
            raise refusal(exc) from exc
    return first or 0


def refusal(exc: TelegramAPIError) -> DeliveryRefused:
    """How a Bot API error bears on retrying: 429, 5xx and network errors are retried."""
    if isinstance(exc, TelegramRetryAfter):
        return DeliveryRefused(exc.message, retry_after=float(exc.retry_after))
    if isinstance(exc, TelegramForbiddenError | TelegramNotFound | TelegramBadRequest):
        # Blocked, chat not found, file refused: the same next time.
        return DeliveryRefused(exc.message, permanent=True)
    return DeliveryRefused(exc.message)


def target_of(job: JobRecord) -> Target:
    chat_id = job.origin.get("chat_id")
    if chat_id is None:
        raise DeliveryRefused("the job does not say where it was asked", permanent=True)
    reply_to = job.origin.get("message_id")
    return Target(int(chat_id), int(reply_to) if reply_to is not None else None)


class TelegramCourier:
    """``bot.couriers.Courier`` for Telegram: everything it needs is in the stored job."""

    def __init__(self, bot: Bot, app: App, following: Following) -> None:
        self.bot, self.app, self.following = bot, app, following

    async def deliver(self, job: JobRecord, done: Done) -> str:
        target = target_of(job)
        await self.following.hold(job.id)
        message_id = await send_result(self.bot, self.app, job, done, target)
        # Nobody here is showing its status: the one another process showed goes.
        found = None if self.app.follows(job.id) else await self.app.service.status_message(job.id)
        if found:
            await ChatStatus(self.bot, target, job.id, int(found)).delete()
        return f"{target.chat_id}:{message_id}"

    async def notify(self, job: JobRecord, text: str) -> None:
        target = target_of(job)
        try:
            await self.bot.send_message(target.chat_id, text, reply_parameters=target.reply())
        except TelegramAPIError as exc:
            raise refusal(exc) from exc

    def resume(self, handle: JobHandle, job: JobRecord) -> None:
        with contextlib.suppress(DeliveryRefused):
            show(self.following, self.bot, handle, target_of(job), origin_notices(job))
