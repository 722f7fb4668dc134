"""Delivery on Telegram: results, notices and jobs resumed after a restart, by the Bot API."""

from __future__ import annotations

import contextlib

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError

from adapters.telegram.delivery import ChatStatus, Target, refusal, send_result, show
from bot.app import App
from bot.couriers import JobRecord, asked_pref, origin_notices
from bot.errors import DeliveryRefused
from bot.events import Done
from bot.following import Following
from bot.jobs import JobHandle
from bot.models import UserRef


def target_of(job: JobRecord) -> Target:
    chat_id = job.origin.get("chat_id")
    if chat_id is None:
        raise DeliveryRefused("the job does not say where it was asked", permanent=True)
    reply_to = job.origin.get("message_id")
    return Target(int(chat_id), int(reply_to) if reply_to is not None else None)


class TelegramCourier:
    """``bot.couriers.Courier`` for Telegram: everything it needs is in the stored job."""

    def __init__(self, bot: Bot, app: App, following: Following) -> None:
        self.bot = bot
        self.app = app
        self.following = following

    async def deliver(self, job: JobRecord, done: Done) -> str:
        target = target_of(job)
        prompt = str(job.params.get("prompt", ""))
        notices = origin_notices(job) + done.notices
        await self.following.hold(job.id)
        message_id = await send_result(self.bot, self.app, job.id, UserRef.parse(job.user_key),
                                       done, target, prompt, notices,
                                       also_file=asked_pref(job, "file"))
        # Nobody here is showing its status: the one another process showed goes.
        found = None if self.app.follows(job.id) else await self.app.service.status_message(job.id)
        if found:
            await ChatStatus(self.bot, target, job.id, int(found)).delete()
        return f"{target.chat_id}:{message_id}"

    async def notify(self, job: JobRecord, text: str) -> None:
        target = target_of(job)
        try:
            await self.bot.send_message(target.chat_id, text, reply_parameters=target.reply())
        except TelegramNetworkError as exc:
            raise DeliveryRefused(exc.message) from exc
        except TelegramAPIError as exc:
            raise refusal(exc) from exc

    def resume(self, handle: JobHandle, job: JobRecord) -> None:
        with contextlib.suppress(DeliveryRefused):
            show(self.following, self.bot, handle, target_of(job), origin_notices(job))
