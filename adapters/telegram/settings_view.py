"""The /settings message and its keyboard (callback data ``callbacks.UserSetting``); which
buttons it has and what a press does are ``bot.settings_buttons``'."""

from __future__ import annotations

import logging

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import InaccessibleMessage, InlineKeyboardMarkup, Message

from adapters.telegram.callbacks import UserSetting, button, fits
from adapters.telegram.replies import esc
from bot import settings_buttons
from bot.app import App
from bot.i18n import t
from bot.models import UserRef
from bot.policy import on_off
from bot.settings_buttons import After, Key, Press

log = logging.getLogger(__name__)


async def settings_text(app: App, user: UserRef) -> str:
    now = await app.preferences.starting(user, app.config.defaults)
    lines = [f"<b>{esc(t('tg-set-title'))}</b>",
             *map(esc, await app.preferences.describe_user(user)), "",
             esc(t("tg-set-next", strength=now.strength, steps=now.steps,
                   style=now.style or t("value-none"), file=on_off(now.file))),
             "", t("tg-set-hint")]
    return "\n".join(lines)


def keys_of(owner: int, rows: list[list[Key]]) -> InlineKeyboardMarkup:
    """The core's keyboard as buttons only ``owner`` may press."""
    return InlineKeyboardMarkup(inline_keyboard=[[
        button(key.label, UserSetting(owner=owner, action=key.action, arg=key.arg))
        for key in row] for row in rows])


async def settings_keyboard(app: App, user: UserRef) -> InlineKeyboardMarkup:
    owner = int(user.id)
    return keys_of(owner, await settings_buttons.keyboard(app, user, lambda name: fits(
        UserSetting(owner=owner, action=Press.STYLE, arg=name))))


def forget_keyboard(owner: int) -> InlineKeyboardMarkup:
    return keys_of(owner, settings_buttons.forget_keys())


async def apply_press(app: App, user: UserRef, press: UserSetting,
                      message: Message | InaccessibleMessage | None) -> str:
    """Handle a settings or forget button; edits the message and returns the toast text."""
    pressed = await settings_buttons.press(app, user, press.action, press.arg)
    text = pressed.note.render()
    if not isinstance(message, Message) or pressed.after is After.SAME:
        return text
    try:
        if pressed.after is After.NOTE:
            await message.edit_text(esc(text), reply_markup=None)
        else:
            await message.edit_text(await settings_text(app, user),
                                    reply_markup=await settings_keyboard(app, user))
    except TelegramBadRequest as exc:
        # Two quick presses can render the same text, or the message may be gone.
        log.info("settings message not edited: %s", exc)
    return text
