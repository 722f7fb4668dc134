"""The one place a BotError becomes a Telegram reply; HTML escaping for user text."""

from __future__ import annotations

import html
import logging

from aiogram.exceptions import TelegramAPIError
from aiogram.types import Message

from bot.errors import BotError

log = logging.getLogger(__name__)


def esc(text: object) -> str:
    """Escape user-provided text for parse_mode HTML."""
    return html.escape(str(text), quote=False)


async def reply_error(message: Message, error: BotError) -> None:
    """Answer ``message`` with the error's one sentence (escaped, HTML)."""
    try:
        await message.reply(esc(error.user_message), parse_mode="HTML")
    except TelegramAPIError as exc:
        # The request may have been deleted meanwhile; say it without replying.
        log.info("reply_error: replying failed (%s); sending plainly", exc)
        await message.answer(esc(error.user_message), parse_mode="HTML")
