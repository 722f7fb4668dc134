"""Answering: ``respond`` and ``redraw`` for handlers; ``on_error``, the one place an error
reaches a user."""

from __future__ import annotations

import logging

from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.types import ErrorEvent, InlineKeyboardMarkup, Message
from aiogram.utils.text_decorations import html_decoration

from bot.captions import trim
from bot.errors import BotError, EventHandled
from bot.i18n import Msg, t

log = logging.getLogger(__name__)
ALERT_LIMIT = 200  # characters Telegram shows in a callback answer
esc = html_decoration.quote  # user-provided text, escaped for parse_mode HTML


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


async def redraw(message: Message, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Show ``text`` in place of the bot's ``message``; two quick presses can render the same
    text, or the message may be gone: then it stays as it is (what was pressed still holds)."""
    try:
        await message.edit_text(text, reply_markup=markup)
    except TelegramBadRequest as exc:
        log.info("message %s not edited: %s", message.message_id, exc.message)


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
