"""Telegram's flood limits on the bot's session: each counted request waits for its slot in
``bot.send_limits.OutgoingLimits`` (groups, supergroups and channels have negative ids)."""

from __future__ import annotations

import weakref

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType

from bot.config import SendLimits
from bot.send_limits import OutgoingLimits


def counts(api_method: str) -> bool:
    """Whether Telegram counts this method against the flood limits."""
    name = api_method.lower()
    return (name.startswith(("send", "edit", "copy", "forward"))
            and name != "sendchataction")


class RateLimit(BaseRequestMiddleware):
    """Session middleware: every counted request waits for its slot in ``OutgoingLimits``."""

    def __init__(self, limits: OutgoingLimits) -> None:
        self.limits = limits

    async def __call__(self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
                       method: TelegramMethod[TelegramType]) -> Response[TelegramType]:
        chat_id = getattr(method, "chat_id", None)
        if isinstance(chat_id, int) and counts(method.__api_method__):
            await self.limits.wait(chat_id)
        return await make_request(bot, method)


_installed: weakref.WeakKeyDictionary[Bot, OutgoingLimits] = weakref.WeakKeyDictionary()


def install(bot: Bot, limits: SendLimits) -> OutgoingLimits:
    """Limit ``bot``'s outgoing messages; ``limits_of(bot)`` finds them again."""
    outgoing = OutgoingLimits(limits, is_group=lambda chat_id: chat_id < 0)
    bot.session.middleware(RateLimit(outgoing))
    _installed[bot] = outgoing
    return outgoing


def limits_of(bot: Bot) -> OutgoingLimits | None:
    return _installed.get(bot)
