"""Telegram's share of health and metrics: every Bot API request marks it up or down."""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramRetryAfter
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType

from bot import metrics
from bot.health import Health

PLATFORM = "telegram"


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
