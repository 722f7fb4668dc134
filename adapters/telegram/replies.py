"""The one place a BotError becomes something the user sees; HTML escaping for user text."""

from __future__ import annotations

import html
import logging

from aiogram.exceptions import TelegramAPIError
from aiogram.types import CallbackQuery, Message

from bot.errors import BotError

log = logging.getLogger(__name__)
ALERT_LIMIT = 200  # characters Telegram shows in a callback answer


def esc(text: object) -> str:
    """Escape user-provided text for parse_mode HTML."""
    return html.escape(str(text), quote=False)


def error_text(error: BotError) -> str:
    """The error's one sentence, as HTML (for a reply or an edited status message)."""
    return "⚠️ " + esc(error.user_message)


async def reply_error(message: Message, error: BotError) -> None:
    """Answer ``message`` with the error's one sentence."""
    try:
        await message.reply(error_text(error), parse_mode="HTML")
    except TelegramAPIError as exc:
        # The request may have been deleted meanwhile; say it without replying.
        log.info("reply_error: replying failed (%s); sending without the reply", exc)
        try:
            await message.answer(error_text(error), parse_mode="HTML")
        except TelegramAPIError as again:
            log.warning("could not tell chat %s: %s", message.chat.id, again)


async def answer_error(callback: CallbackQuery, error: BotError) -> None:
    """Answer a button press with the error's sentence as an alert (plain text there)."""
    text = error.user_message
    if len(text) > ALERT_LIMIT:
        text = text[: ALERT_LIMIT - 1] + "…"
    await callback.answer(text, show_alert=True)
