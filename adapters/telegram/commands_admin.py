"""Group-admin commands (/chatsettings, /chatset, /chatreset) and owner commands (/grant,
/stats). Rights are checked on the server side for every command and button."""

from __future__ import annotations

import contextlib

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from adapters.telegram.admin import is_chat_admin
from adapters.telegram.commands_user import chat_ref, respond, user_ref
from adapters.telegram.replies import answer_error, esc, reply_error
from bot.app import App
from bot.errors import BotError, NotAllowed, OptionError
from bot.models import ChatRef, UserRef
from bot.payments import revenue_lines
from bot.setting_fields import CHAT_FIELDS, Kind

GROUPS_ONLY = "Chat settings work in groups: send this in the group you administer."
NOT_ADMIN = "Only this group's admins can change its settings."
NOT_OWNER = "Only the bot's owners can do that."
GRANT_USAGE = "Use /grant USER_ID N, or reply to the user's message with /grant N."
MAX_GRANT = 1_000_000
TOGGLES = tuple(f.key for f in CHAT_FIELDS if f.kind is Kind.SWITCH)


def make_router() -> Router:
    """A fresh router with the admin and owner commands (one dispatcher per router)."""
    router = Router(name="telegram-admin-commands")
    router.message.register(chat_settings, Command("chatsettings"))
    router.message.register(chat_set, Command("chatset"))
    router.message.register(chat_reset, Command("chatreset"))
    router.message.register(grant, Command("grant"))
    router.message.register(stats, Command("stats"))
    router.callback_query.register(chat_toggle, F.data.startswith("s:c:"))
    return router


async def admin_chat(message: Message, bot: Bot, app: App) -> ChatRef | None:
    """The group if the sender administers it; otherwise says why not and returns None."""
    if message.chat.type == "private":
        await reply_error(message, NotAllowed(GROUPS_ONLY))
        return None
    if not await is_chat_admin(bot, app, message):
        await reply_error(message, NotAllowed(NOT_ADMIN))
        return None
    return chat_ref(message.chat)


async def owner(message: Message, app: App) -> UserRef | None:
    """The sender if they are one of the bot's owners; otherwise refuses and returns None."""
    user = message.from_user
    if user is None or message.sender_chat is not None or not app.config.is_owner(
            f"telegram:{user.id}"):
        await reply_error(message, NotAllowed(NOT_OWNER))
        return None
    return user_ref(user)


async def chat_text(app: App, chat: ChatRef) -> str:
    lines = await app.preferences.describe_chat(chat)
    return ("<b>This chat's settings</b>\n" + "\n".join(map(esc, lines))
            + "\n\nChange with <code>/chatset KEY VALUE</code>; /chatreset undoes everything.")


async def chat_keyboard(app: App, chat: ChatRef) -> InlineKeyboardMarkup:
    policy = await app.preferences.chat_policy(chat)
    return InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(text=f"{key}: {'on' if getattr(policy, key) else 'off'}",
                             callback_data=f"s:c:{key}") for key in TOGGLES]])


async def chat_settings(message: Message, bot: Bot, app: App) -> None:
    chat = await admin_chat(message, bot, app)
    if chat is not None:
        await respond(message, await chat_text(app, chat), await chat_keyboard(app, chat))


async def chat_set(message: Message, command: CommandObject, bot: Bot, app: App) -> None:
    chat = await admin_chat(message, bot, app)
    if chat is None:
        return
    key, _, value = (command.args or "").strip().partition(" ")
    if not key or not value.strip():
        keys = [f"<code>{f.key}</code>: {esc(f.help_text())}" for f in CHAT_FIELDS
                if f.kind is not Kind.OPTION]
        await respond(message, "Usage: <code>/chatset KEY VALUE</code>\n" + "\n".join(keys)
                      + "\nAny option name (e.g. <code>steps 20</code>) sets the chat's default.")
        return
    try:
        note = await app.preferences.set_chat(chat, key, value.strip())
    except BotError as exc:
        await reply_error(message, exc)
        return
    await respond(message, esc(note.render()))


async def chat_reset(message: Message, bot: Bot, app: App) -> None:
    chat = await admin_chat(message, bot, app)
    if chat is not None:
        await respond(message, esc((await app.preferences.reset_chat(chat)).render()))


async def chat_toggle(query: CallbackQuery, bot: Bot, app: App) -> None:
    """An on/off button under /chatsettings; the presser's rights are checked again."""
    key = (query.data or "").removeprefix("s:c:")
    message = query.message
    if key not in TOGGLES or not isinstance(message, Message):
        await answer_error(query, OptionError("That button is out of date; send /chatsettings "
                                              "again."))
        return
    if not await is_chat_admin(bot, app, query):
        await answer_error(query, NotAllowed(NOT_ADMIN))
        return
    chat = chat_ref(message.chat)
    policy = await app.preferences.chat_policy(chat)
    note = await app.preferences.set_chat(chat, key, "off" if getattr(policy, key) else "on")
    # Two quick presses can render the same text; the setting itself is saved either way.
    with contextlib.suppress(TelegramBadRequest):
        await message.edit_text(await chat_text(app, chat), parse_mode="HTML",
                                reply_markup=await chat_keyboard(app, chat))
    await query.answer(note.render())


def grant_args(message: Message, args: str | None) -> tuple[UserRef, int]:
    """Who gets how much: ``USER_ID N``, or ``N`` in reply to the user's message."""
    words = (args or "").split()
    replied = message.reply_to_message
    if len(words) == 1 and replied is not None and replied.from_user is not None:
        if replied.from_user.is_bot:
            raise OptionError("Bots have no credits; reply to a person's message.")
        target, amount = user_ref(replied.from_user), words[0]
    elif len(words) == 2:
        ident = words[0].removeprefix("telegram:")
        if not ident.lstrip("-").isdigit():
            raise OptionError(GRANT_USAGE)
        target, amount = UserRef("telegram", ident), words[1]
    else:
        raise OptionError(GRANT_USAGE)
    try:
        number = int(amount)
    except ValueError:
        raise OptionError(GRANT_USAGE) from None
    if number == 0 or abs(number) > MAX_GRANT:
        raise OptionError(f"The amount must be a whole number from 1 to {MAX_GRANT} "
                          "(negative to take credits away).")
    return target, number


async def grant(message: Message, command: CommandObject, app: App) -> None:
    by = await owner(message, app)
    if by is None:
        return
    try:
        target, amount = grant_args(message, command.args)
    except BotError as exc:
        await reply_error(message, exc)
        return
    balance = await app.grant(target, amount, by=by)
    await respond(message, f"{'Granted' if amount > 0 else 'Took'} {abs(amount)} credit"
                  f"{'s' if abs(amount) != 1 else ''} {'to' if amount > 0 else 'from'} "
                  f"{esc(target.name or target.id)}; their balance is now {balance}.")


async def stats(message: Message, app: App) -> None:
    if await owner(message, app) is None:
        return
    numbers = await app.stats()
    jobs = ", ".join(f"{status} {count}" for status, count in sorted(numbers.jobs.items()))
    lines = ["<b>Stats</b>",
             f"Users: {numbers.users} (holding {numbers.credits_outstanding} credits)",
             f"Jobs: {esc(jobs or 'none')}",
             f"Jobs in the last 24 h: {numbers.jobs_last_24h}",
             f"Credits spent: {numbers.credits_spent}",
             f"Queued or running now: {numbers.in_progress}",
             f"Providers: {esc(', '.join(numbers.providers) or 'none')}",
             "", "<b>Sales</b> (last 7 days)",
             *map(esc, revenue_lines(list(numbers.revenue)))]
    await respond(message, "\n".join(lines))

