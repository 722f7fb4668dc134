"""User commands: /start, /help, /balance, /settings (with buttons), /set, /reset, /styles,
/providers, /cancel, /forget."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import CallbackQuery, Chat, InlineKeyboardMarkup, Message, User

from adapters.telegram.replies import answer_error, esc, reply_error
from adapters.telegram.settings_view import (
    apply_press,
    forget_keyboard,
    settings_keyboard,
    settings_text,
)
from bot import presenter
from bot.app import App
from bot.credits import describe_entry
from bot.errors import BotError, NotAllowed
from bot.i18n import t
from bot.models import ChatRef, UserRef

ANONYMOUS = "Anonymous admins have no personal account here; send this as yourself."
NOT_YOURS = "These buttons are someone else's; send /settings for yours."
HISTORY_LINES = 5


def user_ref(user: User) -> UserRef:
    return UserRef("telegram", str(user.id), user.full_name)


def chat_ref(chat: Chat) -> ChatRef:
    return ChatRef("telegram", str(chat.id), private=chat.type == "private")


async def respond(message: Message, text: str,
                  markup: InlineKeyboardMarkup | None = None) -> Message:
    """Answer in a private chat; reply in a group so the asker sees whom it is for."""
    if message.chat.type == "private":
        return await message.answer(text, parse_mode="HTML", reply_markup=markup)
    return await message.reply(text, parse_mode="HTML", reply_markup=markup)


async def asker(message: Message) -> UserRef | None:
    """The person behind a command, or None (after saying why) for an anonymous admin."""
    if message.from_user is None or message.sender_chat is not None:
        await respond(message, esc(ANONYMOUS))
        return None
    return user_ref(message.from_user)


def make_router() -> Router:
    """A fresh router with every user command (a router can join one dispatcher only)."""
    router = Router(name="telegram-user-commands")
    router.message.register(start, CommandStart())
    router.message.register(help_, Command("help"))
    router.message.register(balance, Command("balance"))
    router.message.register(settings, Command("settings"))
    router.message.register(set_default, Command("set"))
    router.message.register(reset_default, Command("reset"))
    router.message.register(styles, Command("styles"))
    router.message.register(providers, Command("providers"))
    router.message.register(cancel, Command("cancel"))
    router.message.register(forget, Command("forget"))
    router.callback_query.register(settings_press, F.data.startswith("s:u:"))
    return router


async def start(message: Message, app: App) -> None:
    user = await asker(message)
    if user is None:
        return
    lines = [f"👋 Hi {esc(user.name)}! I turn your photos into new images."]
    if app.config.credits.enabled:
        lines.append(t("balance-line", count=await app.balance(user)))
    lines += ["Send a photo with a caption like:", f"<code>{esc(presenter.EXAMPLE)}</code>",
              "/help lists every option; /settings keeps your favourites."]
    await respond(message, "\n".join(lines))


async def help_(message: Message, app: App) -> None:
    private = message.chat.type == "private"
    lines = [f"<b>{t('help-how-title')}</b>", t("help-how")]
    if private:
        lines.append(t("help-private"))
    lines += ["", f"<b>{t('help-options')}</b>", *map(esc, presenter.options_help()),
              "", f"<b>{t('help-styles')}</b> (<code>--style NAME</code>)",
              *map(esc, presenter.styles_lines(app.config.styles)),
              "", f"<b>{t('help-providers')}</b> (<code>--provider NAME</code>)",
              *map(esc, presenter.providers_lines(app.providers, app.service.credits)),
              "", f"<b>{t('help-commands')}</b>",
              "/balance · /settings · /set KEY VALUE · /reset [KEY] · /styles · /providers · "
              "/cancel · /forget · /buy · /paysupport · /terms"]
    if not private:
        lines.append(t("help-admins"))
    if message.from_user and app.config.is_owner(f"telegram:{message.from_user.id}"):
        lines.append(t("help-owners"))
    await respond(message, "\n".join(lines))


async def balance(message: Message, app: App) -> None:
    user = await asker(message)
    if user is None:
        return
    if not app.config.credits.enabled:
        await respond(message, t("credits-off"))
        return
    lines = [t("balance-line", count=await app.balance(user))]
    history = await app.history(user, HISTORY_LINES)
    if history:
        lines += ["", "<b>Recent movements</b>", *(esc(describe_entry(e)) for e in history)]
    await respond(message, "\n".join(lines))


async def settings(message: Message, app: App) -> None:
    user = await asker(message)
    if user is None:
        return
    await respond(message, await settings_text(app, user),
                  await settings_keyboard(app, user))


async def set_default(message: Message, command: CommandObject, app: App) -> None:
    user = await asker(message)
    if user is None:
        return
    key, _, value = (command.args or "").strip().partition(" ")
    if not key or not value.strip():
        await respond(message, "Usage: <code>/set KEY VALUE</code>, e.g. <code>/set strength "
                      "0.5</code> or <code>/set file on</code>. The keys are the options in "
                      "/help.")
        return
    try:
        note = await app.preferences.set_user(user, key, value.strip())
    except BotError as exc:
        await reply_error(message, exc)
        return
    await respond(message, esc(note.render()))


async def reset_default(message: Message, command: CommandObject, app: App) -> None:
    user = await asker(message)
    if user is None:
        return
    try:
        note = await app.preferences.reset_user(user, (command.args or "").strip() or None)
    except BotError as exc:
        await reply_error(message, exc)
        return
    await respond(message, esc(note.render()))


async def styles(message: Message, app: App) -> None:
    lines = presenter.styles_lines(app.config.styles) or ["(no styles configured)"]
    await respond(message, "<b>Styles</b> (<code>--style NAME</code>)\n"
                  + "\n".join(map(esc, lines)))


async def providers(message: Message, app: App) -> None:
    lines = (presenter.providers_lines(app.providers, app.service.credits)
             or ["(no providers configured)"])
    await respond(message, "<b>Providers</b> (<code>--provider NAME</code>)\n"
                  + "\n".join(map(esc, lines)))


async def cancel(message: Message, app: App) -> None:
    user = await asker(message)
    if user is None:
        return
    handle = await app.cancel_latest(user)
    text = ("cancel-none" if handle is None else
            "cancel-latest-refunded" if handle.price else "cancel-latest")
    await respond(message, t(text))


async def forget(message: Message) -> None:
    if await asker(message) is None:
        return
    assert message.from_user is not None  # asker checked it
    await respond(message, "This erases your personal settings and the prompts of your past "
                  "requests. Your credit history stays, for the audit trail. Erase?",
                  forget_keyboard(message.from_user.id))


async def settings_press(query: CallbackQuery, app: App) -> None:
    """A press on the /settings or /forget keyboard; only its owner may use it."""
    owner, _, action = (query.data or "").removeprefix("s:u:").partition(":")
    if owner != str(query.from_user.id):
        await answer_error(query, NotAllowed(NOT_YOURS))
        return
    user = user_ref(query.from_user)
    try:
        toast = await apply_press(app, user, action, query.message)
    except BotError as exc:
        await answer_error(query, exc)
        return
    await query.answer(toast)

