"""What the bot's session does around each Bot API request: waiting for its slot within
Telegram's flood limits (``bot.send_limits``), retrying a 429, and marking health and metrics."""

from __future__ import annotations

import asyncio
import logging
import weakref

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


class FloodControl(BaseRequestMiddleware):
    """On 429 wait the ``retry_after`` Telegram asks for, then send the same request again."""

    def __init__(self, retries: int = FLOOD_RETRIES, max_wait: float = MAX_FLOOD_WAIT) -> None:
        self.retries = retries
        self.max_wait = max_wait

    async def __call__(self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
                       method: TelegramMethod[TelegramType]) -> Response[TelegramType]:
        attempt = 0
        while True:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                attempt += 1
                if attempt > self.retries or exc.retry_after > self.max_wait:
                    raise
                log.info("flood control on %s: waiting %s s", method.__api_method__,
                         exc.retry_after)
                await asyncio.sleep(exc.retry_after)


def counts(api_method: str) -> bool:
    """Whether Telegram counts this method against the flood limits."""
    name = api_method.lower()
    return (name.startswith(("send", "edit", "copy", "forward"))
            and name != "sendchataction")


class RateLimit(BaseRequestMiddleware):
    """Every counted request waits for its slot in ``OutgoingLimits`` (groups, supergroups and
    channels have negative ids)."""

    def __init__(self, limits: OutgoingLimits) -> None:
        self.limits = limits

    async def __call__(self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
                       method: TelegramMethod[TelegramType]) -> Response[TelegramType]:
        chat_id = getattr(method, "chat_id", None)
        if isinstance(chat_id, int) and counts(method.__api_method__):
            await self.limits.wait(chat_id)
        return await make_request(bot, method)


_installed: weakref.WeakKeyDictionary[Bot, OutgoingLimits] = weakref.WeakKeyDictionary()


def install_limits(bot: Bot, limits: SendLimits) -> OutgoingLimits:
    """Limit ``bot``'s outgoing messages; ``limits_of(bot)`` finds them again."""
    outgoing = OutgoingLimits(limits, is_group=lambda chat_id: chat_id < 0)
    bot.session.middleware(RateLimit(outgoing))
    _installed[bot] = outgoing
    return outgoing


def limits_of(bot: Bot) -> OutgoingLimits | None:
    return _installed.get(bot)


class ApiWatch(BaseRequestMiddleware):
    """Counts failed requests and 429s; an unreachable Bot API makes Telegram unhealthy.

    Registered after ``FloodControl``, so it sees every attempt, retries included.
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
