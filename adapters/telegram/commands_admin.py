"""Group-admin commands (/chatsettings, /chatset, /chatreset) behind ``IsChatAdmin`` and owner
commands (/grant, /stats; /refund in payments) behind ``IsOwner``, checked for every command
and button; a refused one is answered by ``not_admin`` / ``not_owner``."""

from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.chat_member import ADMINS
from cachetools import TTLCache

from adapters.telegram.callbacks import ChatToggle, button
from adapters.telegram.inputs import chat_of, user_of
from adapters.telegram.replies import esc, redraw, respond
from bot import presenter
from bot.app import App
from bot.credits import grant_amount
from bot.errors import NotAllowed, OptionError
from bot.i18n import Msg, t
from bot.models import ChatRef, UserRef
from bot.payments import revenue_lines
from bot.places import Switch
from bot.policy import on_off
from bot.setting_fields import CHAT_FIELDS, Kind, key_value

log = logging.getLogger(__name__)
CACHE_SIZE = 10_000  # (chat, user) answers kept; the oldest go first
ADMIN_COMMANDS = ("chatsettings", "chatset", "chatreset")
OWNER_COMMANDS = ("grant", "stats", "refund")
GRANT_USAGE = Msg("tg-grant-usage")


class IsChatAdmin(Filter):
    """The sender administers the group the message or button is in (anonymous admins too).

    Answers are kept for ``telegram.admin_cache_seconds`` (60 s by default; 0 asks every time),
    so a demoted admin loses the rights within that time. A failed getChatMember is not kept.
    """

    def __init__(self, ttl: float) -> None:
        self._cache: TTLCache[tuple[int, int], bool] = TTLCache(maxsize=CACHE_SIZE, ttl=ttl)

    async def __call__(self, event: Message | CallbackQuery, bot: Bot) -> bool:
        message = event if isinstance(event, Message) else event.message
        if message is None or message.chat.type == "private":
            return False
        chat_id = message.chat.id
        if isinstance(event, Message) and event.sender_chat and event.sender_chat.id == chat_id:
            return True  # an anonymous admin posts as the group itself
        if event.from_user is None:
            return False
        user_id = event.from_user.id
        known = self._cache.get((chat_id, user_id))
        if known is not None:
            return known
        try:
            member = await bot.get_chat_member(chat_id, user_id)
        except TelegramAPIError as exc:
            log.warning("getChatMember failed for chat %s: %s", chat_id, exc)
            return False
        is_admin = isinstance(member, ADMINS)
        self._cache[(chat_id, user_id)] = is_admin
        return is_admin


class IsOwner(Filter):
    """The sender, as a person (not as a chat), is one of the configured bot owners."""

    async def __call__(self, message: Message, app: App) -> bool:
        user = message.from_user
        return (user is not None and message.sender_chat is None
                and app.config.is_owner(f"telegram:{user.id}"))


def make_router(admin_cache_seconds: float) -> Router:
    """A fresh admin router: the commands behind their filters, then the refusals."""
    router = Router(name="telegram-admin-commands")
    admin, owner = IsChatAdmin(admin_cache_seconds), IsOwner()
    router.message.register(chat_settings, Command("chatsettings"), admin)
    router.message.register(chat_set, Command("chatset"), admin)
    router.message.register(chat_reset, Command("chatreset"), admin)
    router.callback_query.register(chat_toggle, ChatToggle.filter(), admin)
    router.message.register(not_admin, Command(*ADMIN_COMMANDS))
    router.callback_query.register(not_admin, ChatToggle.filter())
    router.message.register(grant, Command("grant"), owner)
    router.message.register(stats, Command("stats"), owner)
    router.message.register(not_owner, Command(*OWNER_COMMANDS), ~owner)
    return router


async def not_admin(event: Message | CallbackQuery) -> None:
    private = isinstance(event, Message) and event.chat.type == "private"
    raise NotAllowed(msg=Msg("tg-groups-only" if private else "tg-not-admin"))


async def not_owner(message: Message) -> None:
    raise NotAllowed(msg=Msg("tg-not-owner"))


async def chat_view(app: App, chat: ChatRef) -> tuple[str, InlineKeyboardMarkup]:
    """The /chatsettings message: the chat's settings, and its on/off switches as buttons."""
    lines = await app.preferences.describe_chat(chat)
    policy = await app.preferences.chat_policy(chat)
    return ("\n".join([f"<b>{t('tg-chat-title')}</b>", *map(esc, lines), "", t("tg-chat-hint")]),
            InlineKeyboardMarkup(inline_keyboard=[[
                button(f"{key}: {on_off(getattr(policy, key))}", ChatToggle(key=key))
                for key in Switch]]))


async def chat_settings(message: Message, app: App) -> None:
    await respond(message, *await chat_view(app, chat_of(message.chat)))


async def chat_set(message: Message, command: CommandObject, app: App) -> None:
    key, value = key_value(command.args)
    if not value:
        keys = [f"<code>{f.key}</code>: {esc(f.help_text())}" for f in CHAT_FIELDS
                if f.kind is not Kind.OPTION]
        await respond(message, "\n".join([t("tg-chatset-usage"), *keys,
                                           t("tg-chatset-any-option")]))
        return
    note = await app.preferences.set_chat(chat_of(message.chat), key, value)
    await respond(message, esc(note.render()))


async def chat_reset(message: Message, app: App) -> None:
    await respond(message, esc((await app.preferences.reset_chat(chat_of(message.chat))).render()))


async def chat_toggle(query: CallbackQuery, callback_data: ChatToggle, app: App) -> None:
    """An on/off button under /chatsettings; the presser's rights are checked again."""
    key, message = callback_data.key, query.message
    if not isinstance(message, Message):
        raise OptionError(msg=Msg("button-expired"))
    chat = chat_of(message.chat)
    policy = await app.preferences.chat_policy(chat)
    note = await app.preferences.set_chat(chat, key, "off" if getattr(policy, key) else "on")
    await redraw(message, *await chat_view(app, chat))
    await query.answer(note.render())


def grant_args(message: Message, args: str | None) -> tuple[UserRef, int]:
    """Who gets how much: ``USER_ID N``, or ``N`` in reply to the user's message."""
    words = (args or "").split()
    replied = message.reply_to_message
    if len(words) == 1 and replied is not None and replied.from_user is not None:
        if replied.from_user.is_bot:
            raise OptionError(msg=Msg("tg-grant-bot"))
        return user_of(replied.from_user), grant_amount(words[0], GRANT_USAGE)
    ident = words[0].removeprefix("telegram:") if len(words) == 2 else ""
    if not ident.lstrip("-").isdigit():
        raise OptionError(msg=GRANT_USAGE)
    return UserRef("telegram", ident), grant_amount(words[1], GRANT_USAGE)


async def grant(message: Message, command: CommandObject, app: App) -> None:
    target, amount = grant_args(message, command.args)
    balance = await app.grant(target, amount, by=user_of(message.from_user))
    await respond(message, t("tg-granted" if amount > 0 else "tg-took", count=abs(amount),
                             user=esc(target.name or target.id), balance=balance))


async def stats(message: Message, app: App) -> None:
    numbers = await app.stats()
    lines = [f"<b>{t('tg-stats-title')}</b>", *map(esc, presenter.stats_lines(numbers)),
             "", f"<b>{t('tg-stats-sales')}</b>", *map(esc, revenue_lines(list(numbers.revenue)))]
    await respond(message, "\n".join(lines))
