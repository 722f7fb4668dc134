"""Answering: ``respond`` for handlers; ``on_error``, the one place an error reaches a user."""

from __future__ import annotations

import html
import logging

from aiogram.exceptions import TelegramAPIError
from aiogram.types import ErrorEvent, InlineKeyboardMarkup, Message

from bot.captions import trim
from bot.errors import BotError, EventHandled
from bot.i18n import Msg, t

log = logging.getLogger(__name__)
ALERT_LIMIT = 200  # characters Telegram shows in a callback answer


def esc(text: object) -> str:
    """Escape user-provided text for parse_mode HTML."""
    return html.escape(str(text), quote=False)


def markup(msg: Msg) -> str:
    """A catalogue text written in HTML, rendered with its parameters escaped."""
    return t(msg.id, **{key: esc(value) if isinstance(value, str) else value
                        for key, value in msg.params.items()})


async def respond(message: Message, text: str,
                  markup: InlineKeyboardMarkup | None = None) -> Message:
    """Answer in a private chat; reply in a group so the asker sees whom it is for."""
    if message.chat.type == "private":
        return await message.answer(text, reply_markup=markup)
    return await message.reply(text, reply_markup=markup)


async def on_error(event: ErrorEvent) -> None:
    """A handler's ``BotError`` as its one sentence (in the user's language, ``dp.errors``
    runs inside the locale middleware too); anything else is logged and answered with
    ``error-generic``. A redelivered update (``EventHandled``) is answered with nothing."""
    error = event.exception
    if isinstance(error, EventHandled):
        return
    if not isinstance(error, BotError):
        log.error("update %s failed", event.update.update_id, exc_info=error)
        error = BotError()
    text, update = error.user_message, event.update
    if update.callback_query is not None:
        await update.callback_query.answer(trim(text, ALERT_LIMIT), show_alert=True)
    elif update.pre_checkout_query is not None:
        await update.pre_checkout_query.answer(ok=False, error_message=text)
    elif update.message is not None:
        try:  # a request deleted meanwhile is answered without the reply (the bot's default)
            await update.message.reply("⚠️ " + esc(text))
        except TelegramAPIError as exc:
            log.warning("could not tell chat %s: %s", update.message.chat.id, exc)
