"""Getting updates in and requests out: the Bot session, polling, webhook."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import BufferedInputFile, InputFile
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import FormData

from adapters.telegram.session import SendSlots
from bot.config import SendLimits, TelegramConfig
from bot.multipart import RenderedForm
from bot.web import LateRoute, standalone_post

log = logging.getLogger(__name__)


class BotSession(AiohttpSession):
    """The aiohttp session; over plain HTTP (a local Bot API server) closing skips the TLS wait.

    Its ``slots`` keep every request within Telegram's flood limits (progress messages ask
    them whether a chat has room). It also holds each ``Response[T]`` it has parsed: pydantic
    caches parametrized models only weakly, so the garbage collector drops them and every few
    requests aiogram built one again (4-5 ms of schema work each, measured in the Telegram
    benchmark). A photo in memory goes out in one write (``bot.multipart``).
    """

    def __init__(self, limits: SendLimits, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._responses: dict[Any, type[Response[Any]]] = {}
        self.slots = SendSlots(limits)
        self.middleware(self.slots)

    def check_response(self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int,
                       content: str) -> Response[TelegramType]:
        returning = method.__returning__
        if returning not in self._responses:
            self._responses[returning] = Response[returning]  # type: ignore[valid-type]
        return super().check_response(bot, method, status_code, content)

    def build_form_data(self, bot: Bot, method: TelegramMethod[TelegramType]) -> FormData:
        files: dict[str, InputFile] = {}
        fields = [(key, value) for key, raw in method.model_dump(warnings=False).items()
                  if (value := self.prepare_value(raw, bot=bot, files=files))]
        if not files:
            return RenderedForm.urlencoded(fields)
        held = {key: file for key, file in files.items() if isinstance(file, BufferedInputFile)}
        if len(held) < len(files):  # a file on disk or at a URL: aiogram streams it
            return super().build_form_data(bot, method)
        # The method's own file field is the usual upload (one part, not attach:// and a part).
        own = {v.removeprefix("attach://"): k for k, v in fields if v.startswith("attach://")}
        return RenderedForm.multipart([(k, v) for k, v in fields if not v.startswith("attach://")],
                                      [(own.get(key, key), file.filename or key, file.data)
                                       for key, file in held.items()])

    async def close(self) -> None:
        if not self.api.base.startswith("http://"):
            await super().close()
        elif self._session is not None and not self._session.closed:
            await self._session.close()


def make_bot(config: TelegramConfig) -> Bot:
    """A Bot on ``api_base`` (a self-hosted server too), within Telegram's flood limits; HTML by
    default, and a reply to a message deleted meanwhile is sent without the reply."""
    if config.token is None:
        raise ValueError("telegram.token is not set")
    api = TelegramAPIServer.from_base(config.api_base.rstrip("/"), is_local=config.local_files)
    return Bot(config.token.get_secret_value(), session=BotSession(config.limits, api=api),
               default=DefaultBotProperties(parse_mode="HTML", allow_sending_without_reply=True))


async def poll(bot: Bot, dp: Dispatcher, stop: asyncio.Event,
               allowed_updates: list[str]) -> None:
    """Long polling until ``stop`` is set (the session is the caller's to close)."""
    await bot.delete_webhook(drop_pending_updates=False)
    started = asyncio.Event()

    async def on_startup() -> None:
        started.set()

    dp.startup.register(on_startup)
    polling = asyncio.create_task(dp.start_polling(
        bot, handle_signals=False, close_bot_session=False, allowed_updates=allowed_updates),
        name="telegram-polling")
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({polling, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not polling.done():
            # stop_polling refuses to run before polling has begun.
            starting = asyncio.create_task(started.wait())
            await asyncio.wait({polling, starting}, return_when=asyncio.FIRST_COMPLETED)
            starting.cancel()
            if not polling.done():
                await dp.stop_polling()
        await polling
    finally:
        stopping.cancel()
        if not polling.done():
            polling.cancel()
            await asyncio.gather(polling, return_exceptions=True)


async def serve_webhook(bot: Bot, dp: Dispatcher, config: TelegramConfig, stop: asyncio.Event,
                        allowed_updates: list[str], route: LateRoute | None = None) -> None:
    """Serve the webhook (secret token checked) and register it, until ``stop`` is set.

    With ``route`` the bot's own HTTP server (health, metrics) receives the updates;
    without it a server of its own listens on the webhook's host and port.
    """
    hook = config.webhook
    if hook is None:
        raise ValueError("webhook mode needs [telegram.webhook]")
    secret = hook.secret_token.get_secret_value() if hook.secret_token else None
    if secret is None:
        log.warning("telegram.webhook.secret_token is not set: anyone can post updates")
    # Routed by hand: the handler's own register() would close the bot session at shutdown,
    # while deliveries still need it to say goodbye.
    handler = SimpleRequestHandler(dispatcher=dp, bot=bot, secret_token=secret)
    async with contextlib.AsyncExitStack() as own:
        if route is None:
            route = await own.enter_async_context(
                standalone_post(hook.host, hook.port, hook.path))
        route.handler = handler.handle
        try:
            await bot.set_webhook(hook.url, secret_token=secret, allowed_updates=allowed_updates)
            await stop.wait()
        finally:
            route.handler = None
