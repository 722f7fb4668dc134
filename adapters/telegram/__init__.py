"""Telegram adapter (aiogram 3): ``run_telegram`` is what ``img2img-bot run`` starts."""

from __future__ import annotations

import asyncio
import logging

from aiogram import Dispatcher
from aiogram.dispatcher.middlewares.error import ErrorsMiddleware
from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError

from adapters.telegram import commands_admin, commands_user, payments, requests
from adapters.telegram.command_list import register_commands
from adapters.telegram.delivery import TelegramCourier
from adapters.telegram.replies import on_error
from adapters.telegram.session import ApiWatch
from adapters.telegram.transport import make_bot, poll, serve_webhook
from adapters.telegram.updates import LocaleMiddleware, OncePerUpdate
from bot.app import App
from bot.errors import ConfigError
from bot.following import Following
from bot.reconnect import until_reached

__all__ = ["build_dispatcher", "run_telegram"]

log = logging.getLogger(__name__)
POLLER_ROLE = "telegram-poller"


def build_dispatcher(app: App) -> Dispatcher:
    """Routers in order (commands before buttons before the catch-all requests), deps by name."""
    dp = Dispatcher()
    dp["app"] = app
    dp["following"] = Following(app, "telegram")
    dp.update.outer_middleware(OncePerUpdate(app.service))
    # aiogram's own error middleware once more, inside OncePerUpdate: the user is told before
    # the update is recorded (a locked database makes that record wait its busy timeout).
    dp.update.outer_middleware(ErrorsMiddleware(dp))
    dp.update.middleware(LocaleMiddleware(app))
    dp.errors.middleware(LocaleMiddleware(app))  # errors are told in the user's language too
    dp.errors.register(on_error)
    admin_ttl = app.config.telegram.admin_cache_seconds if app.config.telegram else 60.0
    dp.include_routers(commands_admin.make_router(admin_ttl), *(module.make_router() for module in (
        commands_user, payments, requests)))
    return dp


async def run_telegram(app: App, stop: asyncio.Event) -> None:
    """Run the bot (polling or webhook; a worker only delivers) until ``stop`` is set, then
    close everything."""
    config = app.config.telegram
    if config is None or config.token is None:
        raise ConfigError("telegram.token: no Telegram token is configured")
    app.health.expect("telegram")
    bot = make_bot(config)
    bot.session.middleware(ApiWatch(app.health))
    dp = build_dispatcher(app)
    following: Following = dp["following"]
    try:
        me = await until_reached(
            stop, bot.get_me, TelegramNetworkError, lambda exc, pause: log.error(
                "cannot reach the Telegram Bot API at %s (%s); retrying in %.0f s",
                config.api_base, exc.message, pause))
        if me is None:  # stopped while Telegram was unreachable
            return
        log.info("Telegram bot @%s starting (%s)", me.username, config.mode)
        app.health.up("telegram", f"@{me.username} ({config.mode})")
        await register_commands(bot)
        app.service.register_courier("telegram", TelegramCourier(bot, app, following))
        allowed = dp.resolve_used_update_types()
        if app.role == "worker":  # runs and delivers jobs; another process receives updates
            await stop.wait()
        elif config.mode == "webhook":
            await serve_webhook(bot, dp, config, stop, allowed, app.webhook)
        else:  # one poller over all gateways: a second getUpdates would get 409 Conflict
            await app.service.exclusively(
                POLLER_ROLE, stop, lambda until: poll(bot, dp, until, allowed))
    except TelegramUnauthorizedError as exc:  # at getMe, or the token revoked since
        raise ConfigError("telegram.token: Telegram refused the bot token") from exc
    finally:
        await following.stop()
        await bot.session.close()
