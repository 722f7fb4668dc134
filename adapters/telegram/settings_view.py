"""The /settings message and its keyboard (callback data ``callbacks.UserSetting``); which
buttons it has and what a press does are ``bot.settings_buttons``'."""

from __future__ import annotations

from aiogram.types import InaccessibleMessage, InlineKeyboardMarkup, Message

from adapters.telegram.callbacks import UserSetting, button, fits
from adapters.telegram.replies import esc, redraw
from bot import settings_buttons
from bot.app import App
from bot.i18n import t
from bot.models import UserRef
from bot.policy import on_off
from bot.settings_buttons import After, Key, Press


async def settings_view(app: App, user: UserRef) -> tuple[str, InlineKeyboardMarkup]:
    """The /settings message: the user's defaults, what a request now uses, and the buttons."""
    now = await app.preferences.starting(user, app.config.defaults)
    lines = [f"<b>{esc(t('tg-set-title'))}</b>",
             *map(esc, await app.preferences.describe_user(user)), "",
             esc(t("tg-set-next", strength=now.strength, steps=now.steps,
                   style=now.style or t("value-none"), file=on_off(now.file))),
             "", t("tg-set-hint")]
    owner = int(user.id)
    rows = await settings_buttons.keyboard(app, user, lambda name: fits(
        UserSetting(owner=owner, action=Press.STYLE, arg=name)))
    return "\n".join(lines), keys_of(owner, rows)


def keys_of(owner: int, rows: list[list[Key]]) -> InlineKeyboardMarkup:
    """The core's keyboard as buttons only ``owner`` may press."""
    return InlineKeyboardMarkup(inline_keyboard=[[
        button(key.label, UserSetting(owner=owner, action=key.action, arg=key.arg))
        for key in row] for row in rows])


def forget_keyboard(owner: int) -> InlineKeyboardMarkup:
    return keys_of(owner, settings_buttons.forget_keys())


async def apply_press(app: App, user: UserRef, press: UserSetting,
                      message: Message | InaccessibleMessage | None) -> str:
    """Handle a settings or forget button; edits the message and returns the toast text."""
    pressed = await settings_buttons.press(app, user, press.action, press.arg)
    text = pressed.note.render()
    if not isinstance(message, Message) or pressed.after is After.SAME:
        return text
    if pressed.after is After.NOTE:
        await redraw(message, esc(text))
    else:
        await redraw(message, *await settings_view(app, user))
    return text
