"""User commands: /start, /help, /balance, /settings (with buttons), /set, /reset, /styles,
/providers, /cancel, /forget."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import CallbackQuery, Message

from adapters.telegram.callbacks import UserSetting
from adapters.telegram.inputs import user_of
from adapters.telegram.replies import esc, respond
from adapters.telegram.settings_view import apply_press, forget_keyboard, settings_view
from bot import presenter
from bot.app import App
from bot.credits import describe_entry
from bot.errors import NotAllowed, UserError
from bot.i18n import Msg, t
from bot.models import UserRef
from bot.presenter import HelpSection
from bot.setting_fields import key_value

HISTORY_LINES = 5
COMMANDS = ("/balance · /settings · /set KEY VALUE · /reset [KEY] · /styles · /providers · "
            "/cancel · /forget · /buy · /paysupport · /terms")


def asker(message: Message) -> UserRef:
    """The person behind a command; an anonymous admin (posting as the group) has no account."""
    if message.from_user is None or message.sender_chat is not None:
        raise UserError(msg=Msg("tg-anonymous"))
    return user_of(message.from_user)


def make_router() -> Router:
    """A fresh router with every user command (a router can join one dispatcher only)."""
    router = Router(name="telegram-user-commands")
    router.message.register(start, CommandStart())
    router.message.register(help_, Command("help"))
    router.message.register(balance, Command("balance"))
    router.message.register(settings, Command("settings"))
    router.message.register(set_default, Command("set"))
    router.message.register(reset_default, Command("reset"))
    router.message.register(listing, Command("styles", "providers"))
    router.message.register(cancel, Command("cancel"))
    router.message.register(forget, Command("forget"))
    router.callback_query.register(settings_press, UserSetting.filter())
    return router


async def start(message: Message, app: App) -> None:
    user = asker(message)
    lines = [t("tg-start-hello", name=esc(user.name))]
    if app.config.credits.enabled:
        lines.append(t("balance-line", count=await app.balance(user)))
    lines += [t("tg-start-example"), f"<code>{esc(presenter.EXAMPLE)}</code>", t("tg-start-more")]
    await respond(message, "\n".join(lines))


def section(part: HelpSection, empty: str | None = None) -> list[str]:
    """A part of /help: its title (with the option that picks from it), then its lines."""
    flag = f" (<code>{part.flag}</code>)" if part.flag else ""
    return [f"<b>{part.title}</b>{flag}", *map(esc, part.lines or ([empty] if empty else []))]


async def help_(message: Message, app: App) -> None:
    private = message.chat.type == "private"
    lines = [f"<b>{t('help-how-title')}</b>", t("help-how")]
    if private:
        lines.append(t("help-private"))
    for part in app.help_sections().values():
        lines += ["", *section(part)]
    lines += ["", f"<b>{t('help-commands')}</b>", COMMANDS]
    if not private:
        lines.append(t("help-admins"))
    if message.from_user and app.config.is_owner(f"telegram:{message.from_user.id}"):
        lines.append(t("help-owners"))
    await respond(message, "\n".join(lines))


async def balance(message: Message, app: App) -> None:
    user = asker(message)
    if not app.config.credits.enabled:
        await respond(message, t("credits-off"))
        return
    lines = [t("balance-line", count=await app.balance(user))]
    if history := await app.history(user, HISTORY_LINES):
        lines += ["", f"<b>{t('tg-recent')}</b>", *(esc(describe_entry(e)) for e in history)]
    await respond(message, "\n".join(lines))


async def settings(message: Message, app: App) -> None:
    await respond(message, *await settings_view(app, asker(message)))


async def set_default(message: Message, command: CommandObject, app: App) -> None:
    user = asker(message)
    key, value = key_value(command.args)
    if not value:
        await respond(message, t("tg-set-usage"))
        return
    await respond(message, esc((await app.preferences.set_user(user, key, value)).render()))


async def reset_default(message: Message, command: CommandObject, app: App) -> None:
    note = await app.preferences.reset_user(asker(message), (command.args or "").strip() or None)
    await respond(message, esc(note.render()))


async def listing(message: Message, command: CommandObject, app: App) -> None:
    """/styles and /providers: that part of /help, or a word that none is configured."""
    part = app.help_sections()[command.command]
    await respond(message, "\n".join(section(part, t("tg-none-configured"))))


async def cancel(message: Message, app: App) -> None:
    handle = await app.cancel_latest(asker(message))
    text = ("cancel-none" if handle is None else
            "cancel-latest-refunded" if handle.price else "cancel-latest")
    await respond(message, t(text))


async def forget(message: Message) -> None:
    await respond(message, t("tg-forget-question"), forget_keyboard(int(asker(message).id)))


async def settings_press(query: CallbackQuery, callback_data: UserSetting, app: App) -> None:
    """A press on the /settings or /forget keyboard; only its owner may use it."""
    if callback_data.owner != query.from_user.id:
        raise NotAllowed(msg=Msg("tg-settings-not-yours"))
    await query.answer(await apply_press(app, user_of(query.from_user), callback_data,
                                         query.message))
