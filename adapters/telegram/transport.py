"""Getting updates in and requests out: the Bot session, polling, webhook."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods import GetUpdates, Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import BufferedInputFile, InputFile, Update
from aiogram.utils.backoff import Backoff, BackoffConfig
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import FormData

from adapters.telegram.session import SendSlots
from bot.config import SendLimits, TelegramConfig
from bot.multipart import RenderedForm
from bot.web import LateRoute, standalone_post

log = logging.getLogger(__name__)
T = TypeVar("T")


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


POLL_TIMEOUT = 10  # seconds a getUpdates waits for an update (aiogram's default)
CONFIRM_WITHIN = 2.0  # the longest a batch's handlers hold the next getUpdates back
BACKOFF = BackoffConfig(min_delay=1.0, max_delay=5.0, factor=1.3, jitter=0.1)  # aiogram's


async def poll(bot: Bot, dp: Dispatcher, stop: asyncio.Event,
               allowed_updates: list[str]) -> None:
    """Long polling until ``stop`` is set (the session is the caller's to close).

    An update is confirmed to Telegram (by the next getUpdates's ``offset``) only once its
    handler has returned. A request's handler returns once its job is stored, the update
    recorded as processed in the same transaction (``bot.once``), so a process killed before
    that leaves the update unconfirmed: the gateway that polls next gets it again, and
    ``OncePerUpdate`` drops it where its job exists. aiogram's ``start_polling`` confirms a
    batch as soon as it has started the batch's handlers, and a kill lost every request still
    being downloaded or checked: the chaos test (``tests/reliability``) saw up to 36 of 50 lost.
    Its loop is private, so this one is written on its public pieces: ``GetUpdates``,
    ``feed_update``, ``emit_startup``/``emit_shutdown`` and its backoff. A batch's handlers run
    at once, as aiogram runs them; one whose handlers take longer than ``CONFIRM_WITHIN`` is
    confirmed anyway, so a slow download cannot hold everyone's updates back.
    """
    await bot.delete_webhook(drop_pending_updates=False)
    workflow: dict[str, Any] = {"dispatcher": dp, "bots": (bot,), **dp.workflow_data}
    workflow.pop("bot", None)
    request = GetUpdates(timeout=POLL_TIMEOUT, allowed_updates=allowed_updates)
    wait = {"request_timeout": int(bot.session.timeout + POLL_TIMEOUT)}
    backoff = Backoff(BACKOFF)
    handling: set[asyncio.Task[None]] = set()  # handlers still running, kept referenced
    await dp.emit_startup(bot=bot, **workflow)
    log.info("polling for updates")
    try:
        while not stop.is_set():
            try:
                updates = await _unless_stopped(bot(request, **wait), stop)
            except Exception as exc:  # aiogram's loop keeps polling too
                log.error("failed to fetch updates (%s: %s); trying again in %.1f s",
                          type(exc).__name__, exc, backoff.next_delay)
                await _unless_stopped(backoff.asleep(), stop)
                continue
            if updates is None:  # stopped
                break
            backoff.reset()
            if not updates:
                continue
            batch = {asyncio.create_task(_handle(dp, bot, update, workflow))
                     for update in updates}
            handling |= batch
            for task in batch:
                task.add_done_callback(handling.discard)
            await _unless_stopped(asyncio.wait(batch, timeout=CONFIRM_WITHIN), stop)
            request.offset = updates[-1].update_id + 1
    finally:
        log.info("polling stopped")
        await dp.emit_shutdown(bot=bot, **workflow)


async def _unless_stopped(step: Awaitable[T], stop: asyncio.Event) -> T | None:
    """``step``'s result, or None once ``stop`` is set first (``step`` is then cancelled)."""
    running = asyncio.ensure_future(step)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not running.done():
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    return None if running.cancelled() else running.result()


async def _handle(dp: Dispatcher, bot: Bot, update: Update, workflow: dict[str, Any]) -> None:
    """One update through the dispatcher, as aiogram's polling feeds it (errors logged)."""
    try:
        response = await dp.feed_update(bot, update, **workflow)
        if isinstance(response, TelegramMethod):
            await dp.silent_call_request(bot, response)
    except Exception:
        log.exception("update %d failed", update.update_id)


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
    # Telegram is answered once the update is handled (a request's job stored), not at once:
    # a gateway killed before that gets no answer in, and Telegram sends the update again.
    # aiogram answers anyway after 55 s and lets a slower handler go on.
    handler = SimpleRequestHandler(dispatcher=dp, bot=bot, secret_token=secret,
                                   handle_in_background=False)
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
