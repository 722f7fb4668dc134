"""What every update passes through: ``OncePerUpdate`` (a redelivered update is dropped) and
``LocaleMiddleware``, the language to answer in. The core decides that (``App.locale_for``: the
user's ``/set language``, else the chat's ``/chatset language``, else Telegram's
``language_code``).

aiogram's ``I18n`` middleware is not used because it reads compiled ``.mo`` files from a
directory and renders through its own context; the core renders every message through
``bot.i18n`` (Discord too), so this middleware only picks the locale and sets it there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, F
from aiogram.types import Chat, TelegramObject, Update, User

from adapters.telegram.inputs import chat_of, user_of
from bot.app import App
from bot.i18n import DEFAULT, using
from bot.once import once
from bot.service import GenerationService

# An update carrying an image, or answering one, may make a job.
MAY_ASK_FOR_A_JOB = (F.message.photo | F.message.document | F.message.reply_to_message.photo
                     | F.message.reply_to_message.document)


class OncePerUpdate(BaseMiddleware):
    """Drop an update whose id was already processed (Telegram may deliver one twice); an
    update carrying or answering an image is recorded with its job (``bot.once``)."""

    def __init__(self, service: GenerationService) -> None:
        self.service = service

    async def __call__(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                       event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        return await once(self.service.first_time, "telegram", str(event.update_id),
                          lambda: handler(event, data),
                          may_make_job=bool(MAY_ASK_FOR_A_JOB.resolve(event)))


class LocaleMiddleware(BaseMiddleware):
    """Renders everything a handler says in the sender's language; handlers get ``locale``."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                       event: TelegramObject, data: dict[str, Any]) -> Any:
        with self.app.preferences.per_event():  # the request reads the same settings
            user: User | None = data.get("event_from_user")
            chat: Chat | None = data.get("event_chat")
            locale = DEFAULT
            if user is not None and not user.is_bot:
                where = chat_of(chat) if chat is not None else None
                locale = await self.app.locale_for(user_of(user), where, user.language_code)
            data["locale"] = locale
            with using(locale):
                return await handler(event, data)
