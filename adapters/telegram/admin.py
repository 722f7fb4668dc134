"""Who may change a group's settings: getChatMember, cached briefly, anonymous admins included."""

from __future__ import annotations

import logging
import time
import weakref

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import CallbackQuery, ChatMemberAdministrator, ChatMemberOwner, Message

from bot.app import App

log = logging.getLogger(__name__)

DEFAULT_TTL = 60.0


class AdminCache:
    """(chat id, user id) → (expiry, is admin) for a few seconds, to spare getChatMember."""

    def __init__(self) -> None:
        self._entries: dict[tuple[int, int], tuple[float, bool]] = {}

    def get(self, chat_id: int, user_id: int) -> bool | None:
        entry = self._entries.get((chat_id, user_id))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, chat_id: int, user_id: int, is_admin: bool, ttl: float) -> None:
        if ttl > 0:
            self._entries[(chat_id, user_id)] = (time.monotonic() + ttl, is_admin)


# One cache per running app (keyed by its service, which is hashable by identity): a bot
# restarted in the same process, or the next test, must not see another app's answers.
_caches: weakref.WeakKeyDictionary[object, AdminCache] = weakref.WeakKeyDictionary()


def cache_for(app: App) -> AdminCache:
    cache = _caches.get(app.service)
    if cache is None:
        cache = _caches[app.service] = AdminCache()
    return cache


async def is_chat_admin(bot: Bot, app: App, event: Message | CallbackQuery) -> bool:
    """True if the sender of ``event`` administers the group it came from."""
    message = event if isinstance(event, Message) else event.message
    if message is None or message.chat.type == "private":
        return False
    chat_id = message.chat.id
    if isinstance(event, Message) and event.sender_chat and event.sender_chat.id == chat_id:
        return True  # an anonymous admin posts as the group itself
    user = event.from_user
    if user is None:
        return False
    cache = cache_for(app)
    known = cache.get(chat_id, user.id)
    if known is not None:
        return known
    try:
        member = await bot.get_chat_member(chat_id, user.id)
    except TelegramAPIError as exc:
        log.warning("getChatMember failed for chat %s: %s", chat_id, exc)
        return False  # not cached: the next attempt asks again
    is_admin = isinstance(member, ChatMemberOwner | ChatMemberAdministrator)
    ttl = app.config.telegram.admin_cache_seconds if app.config.telegram else DEFAULT_TTL
    cache.put(chat_id, user.id, is_admin, ttl)
    return is_admin
