"""The /settings message and its keyboard (callback data ``callbacks.UserSetting``); what a
press does is ``bot.settings_buttons``'."""

from __future__ import annotations

import logging

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import InaccessibleMessage, InlineKeyboardButton, InlineKeyboardMarkup, Message

from adapters.telegram.callbacks import UserSetting, button, fits
from adapters.telegram.replies import esc
from bot import settings_buttons
from bot.app import App
from bot.i18n import t
from bot.models import UserRef
from bot.policy import on_off
from bot.settings_buttons import After, Press

log = logging.getLogger(__name__)

STYLES_PER_ROW = 3


async def settings_text(app: App, user: UserRef) -> str:
    now = await app.preferences.starting(user, app.config.defaults)
    lines = [f"<b>{esc(t('tg-set-title'))}</b>",
             *map(esc, await app.preferences.describe_user(user)), "",
             esc(t("tg-set-next", strength=now.strength, steps=now.steps,
                   style=now.style or t("value-none"), file=on_off(now.file))),
             "", t("tg-set-hint")]
    return "\n".join(lines)


def _button(text: str, owner: int, action: Press, arg: str = "") -> InlineKeyboardButton:
    return button(text, UserSetting(owner=owner, action=action, arg=arg))


async def settings_keyboard(app: App, user: UserRef) -> InlineKeyboardMarkup:
    now = await app.preferences.starting(user, app.config.defaults)
    owner = int(user.id)
    rows = [[_button(t("tg-set-strength-down"), owner, Press.STRENGTH_DOWN),
             _button(t("tg-set-strength-up"), owner, Press.STRENGTH_UP)],
            [_button(t("tg-set-steps-down"), owner, Press.STEPS_DOWN),
             _button(t("tg-set-steps-up"), owner, Press.STEPS_UP)]]
    names = [name for name in sorted(app.config.styles)
             if fits(UserSetting(owner=owner, action=Press.STYLE, arg=name))]
    style_buttons = [_button(f"{'✓ ' if name == now.style else ''}{name}", owner, Press.STYLE,
                             name) for name in names]
    style_buttons.append(_button(f"{'✓ ' if now.style is None else ''}{t('tg-set-no-style')}",
                                 owner, Press.STYLE))
    rows += [style_buttons[i:i + STYLES_PER_ROW]
             for i in range(0, len(style_buttons), STYLES_PER_ROW)]
    rows.append([_button(t("tg-set-file", state=on_off(now.file)), owner, Press.FILE)])
    rows.append([_button(t("tg-set-reset-all"), owner, Press.RESET)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def forget_keyboard(owner: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[
        _button(t("tg-forget-erase"), owner, Press.FORGET),
        _button(t("tg-forget-keep"), owner, Press.KEEP)]])


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
