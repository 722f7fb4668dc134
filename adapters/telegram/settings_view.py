"""The /settings message and its keyboard (callback data ``callbacks.UserSetting``)."""

from __future__ import annotations

import logging

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import InaccessibleMessage, InlineKeyboardButton, InlineKeyboardMarkup, Message

from adapters.telegram.callbacks import UserSetting, button, fits
from adapters.telegram.replies import esc
from bot.app import App
from bot.errors import OptionError
from bot.i18n import Msg, t
from bot.models import UserRef
from bot.policy import on_off

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


def _button(text: str, owner: int, action: str, arg: str = "") -> InlineKeyboardButton:
    return button(text, UserSetting(owner=owner, action=action, arg=arg))


async def settings_keyboard(app: App, user: UserRef) -> InlineKeyboardMarkup:
    now = await app.preferences.starting(user, app.config.defaults)
    owner = int(user.id)
    rows = [[_button(t("tg-set-strength-down"), owner, "s-"),
             _button(t("tg-set-strength-up"), owner, "s+")],
            [_button(t("tg-set-steps-down"), owner, "n-"),
             _button(t("tg-set-steps-up"), owner, "n+")]]
    names = [name for name in sorted(app.config.styles)
             if fits(UserSetting(owner=owner, action="y", arg=name))]
    style_buttons = [_button(f"{'✓ ' if name == now.style else ''}{name}", owner, "y", name)
                     for name in names]
    style_buttons.append(_button(f"{'✓ ' if now.style is None else ''}{t('tg-set-no-style')}",
                                 owner, "y"))
    rows += [style_buttons[i:i + STYLES_PER_ROW]
             for i in range(0, len(style_buttons), STYLES_PER_ROW)]
    rows.append([_button(t("tg-set-file", state=on_off(now.file)), owner, "f")])
    rows.append([_button(t("tg-set-reset-all"), owner, "r")])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def forget_keyboard(owner: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[
        _button(t("tg-forget-erase"), owner, "forget"),
        _button(t("tg-forget-keep"), owner, "keep")]])


async def _change(app: App, user: UserRef, action: str, name: str) -> Msg | None:
    """Apply one settings button; returns its confirmation, or None if nothing changed."""
    now = await app.preferences.starting(user, app.config.defaults)
    prefs = app.preferences
    if action in ("s-", "s+", "n-", "n+"):
        return await prefs.nudge(user, "strength" if action[0] == "s" else "steps",
                                 action[1] == "+", app.config.defaults)
    if action == "y":
        if not name:
            return await prefs.reset_user(user, "style")
        if name not in app.config.styles:
            raise OptionError(msg=Msg("error-style-gone", {"name": repr(name)}))
        return await prefs.set_user(user, "style", name)
    if action == "f":
        return await prefs.set_user(user, "file", "off" if now.file else "on")
    if action == "r":
        return await prefs.reset_user(user)
    raise OptionError(msg=Msg("error-button-stale"))


async def apply_press(app: App, user: UserRef, press: UserSetting,
                      message: Message | InaccessibleMessage | None) -> str:
    """Handle a settings or forget button; edits the message and returns the toast text."""
    action = press.action
    target = message if isinstance(message, Message) else None
    if action in ("forget", "keep"):
        if action == "keep":
            text = t("tg-forget-kept")
        else:
            erased = await app.forget_user(user)
            text = t("tg-forget-done", count=erased)
        if target is not None:
            await _edit(target, esc(text), None)
        return text
    note = await _change(app, user, action, press.arg)
    if note is None:
        return t("tg-set-at-limit")
    if target is not None:
        await _edit(target, await settings_text(app, user), await settings_keyboard(app, user))
    return note.render()


async def _edit(message: Message, text: str, markup: InlineKeyboardMarkup | None) -> None:
    try:
        await message.edit_text(text, reply_markup=markup)
    except TelegramBadRequest as exc:
        # Two quick presses can render the same text, or the message may be gone.
        log.info("settings message not edited: %s", exc)
