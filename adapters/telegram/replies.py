"""Answering: ``respond`` for handlers; ``on_error``, the one place an error reaches a user."""

from __future__ import annotations

import html
import logging

from aiogram.exceptions import TelegramAPIError
from aiogram.types import ErrorEvent, InlineKeyboardMarkup, Message

from bot.errors import BotError, EventHandled

log = logging.getLogger(__name__)
ALERT_LIMIT = 200  # characters Telegram shows in a callback answer


def esc(text: object) -> str:
    """Escape user-provided text for parse_mode HTML."""
    return html.escape(str(text), quote=False)


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
        short = text if len(text) <= ALERT_LIMIT else text[: ALERT_LIMIT - 1] + "…"
        await update.callback_query.answer(short, show_alert=True)
    elif update.pre_checkout_query is not None:
        await update.pre_checkout_query.answer(ok=False, error_message=text)
    elif update.message is not None:
        await _reply(update.message, "⚠️ " + esc(text))


async def _reply(message: Message, text: str) -> None:
    try:
        await message.reply(text)
    except TelegramAPIError as exc:
        # The request may have been deleted meanwhile; say it without replying.
        log.info("replying failed (%s); sending without the reply", exc)
        try:
            await message.answer(text)
        except TelegramAPIError as again:
            log.warning("could not tell chat %s: %s", message.chat.id, again)
