"""Who may use the admin router: ``IsChatAdmin`` (getChatMember, cached) and ``IsOwner``."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Filter
from aiogram.types import CallbackQuery, ChatMemberAdministrator, ChatMemberOwner, Message
from cachetools import TTLCache

from bot.app import App

log = logging.getLogger(__name__)
CACHE_SIZE = 10_000  # (chat, user) answers kept; the oldest go first


class IsChatAdmin(Filter):
    """The sender administers the group the message or button is in (anonymous admins too).

    Answers are kept for ``telegram.admin_cache_seconds`` (60 s by default; 0 asks every time),
    so a demoted admin loses the rights within that time. A failed getChatMember is not kept.
    """

    def __init__(self) -> None:
        self._cache: TTLCache[tuple[int, int], bool] | None = None

    async def __call__(self, event: Message | CallbackQuery, bot: Bot, app: App) -> bool:
        message = event if isinstance(event, Message) else event.message
        if message is None or message.chat.type == "private":
            return False
        chat_id = message.chat.id
        if isinstance(event, Message) and event.sender_chat and event.sender_chat.id == chat_id:
            return True  # an anonymous admin posts as the group itself
        if event.from_user is None:
            return False
        user_id = event.from_user.id
        if self._cache is None:  # the TTL is the app's, known at the first call
            ttl = app.config.telegram.admin_cache_seconds if app.config.telegram else 60.0
            self._cache = TTLCache(maxsize=CACHE_SIZE, ttl=ttl)
        known = self._cache.get((chat_id, user_id))
        if known is not None:
            return known
        try:
            member = await bot.get_chat_member(chat_id, user_id)
        except TelegramAPIError as exc:
            log.warning("getChatMember failed for chat %s: %s", chat_id, exc)
            return False
        is_admin = isinstance(member, ChatMemberOwner | ChatMemberAdministrator)
        self._cache[(chat_id, user_id)] = is_admin
        return is_admin


class IsOwner(Filter):
    """The sender, as a person (not as a chat), is one of the configured bot owners."""

    async def __call__(self, message: Message, app: App) -> bool:
        user = message.from_user
        return (user is not None and message.sender_chat is None
                and app.config.is_owner(f"telegram:{user.id}"))
