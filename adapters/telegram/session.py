"""What the bot's session does around each Bot API request: waiting for its slot within
Telegram's flood limits (``bot.send_limits``), retrying a 429, and marking health and metrics."""

from __future__ import annotations

import asyncio
import logging

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramRetryAfter
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType

from bot import metrics
from bot.config import SendLimits
from bot.health import Health
from bot.send_limits import OutgoingLimits

log = logging.getLogger(__name__)
PLATFORM = "telegram"
MAX_FLOOD_WAIT = 60.0  # a longer wait is better answered by failing than by freezing a handler
FLOOD_RETRIES = 3


def counts(api_method: str) -> bool:
    """Whether Telegram counts this method against the flood limits."""
    name = api_method.lower()
    return (name.startswith(("send", "edit", "copy", "forward"))
            and name != "sendchataction")


class SendSlots(BaseRequestMiddleware):
    """Every counted request waits for its slot in ``limits`` (groups, supergroups and channels
    have negative ids); on 429 it waits the ``retry_after`` Telegram asks for, then sends the
    same request again, which waits for its slot too."""

    def __init__(self, limits: SendLimits) -> None:
        self.limits = OutgoingLimits(limits, is_group=lambda chat_id: chat_id < 0)

    async def __call__(self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
                       method: TelegramMethod[TelegramType]) -> Response[TelegramType]:
        chat_id = getattr(method, "chat_id", None)
        counted = chat_id if isinstance(chat_id, int) and counts(method.__api_method__) else None
        attempt = 0
        while True:
            if counted is not None:
                await self.limits.wait(counted)
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                attempt += 1
                if attempt > FLOOD_RETRIES or exc.retry_after > MAX_FLOOD_WAIT:
                    raise
                log.info("flood control on %s: waiting %s s", method.__api_method__,
                         exc.retry_after)
                await asyncio.sleep(exc.retry_after)


class ApiWatch(BaseRequestMiddleware):
    """Counts failed requests and 429s; an unreachable Bot API makes Telegram unhealthy.

    Registered after ``SendSlots``, so it sees every attempt, retries included.
    """

    def __init__(self, health: Health) -> None:
        self.health = health

    async def __call__(self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
                       method: TelegramMethod[TelegramType]) -> Response[TelegramType]:
        try:
            response = await make_request(bot, method)
        except TelegramRetryAfter:
            metrics.platform_rate_limited(PLATFORM)
            self.health.answered(PLATFORM)
            raise
        except TelegramNetworkError as exc:
            metrics.platform_error(PLATFORM, "network")
            self.health.down(PLATFORM, f"Bot API unreachable: {exc.message}"[:200])
            raise
        except TelegramAPIError as exc:  # the API answered, with an error
            metrics.platform_error(PLATFORM, type(exc).__name__)
            self.health.answered(PLATFORM)
            raise
        self.health.answered(PLATFORM)
        return response
