"""Every button's callback data, packed and parsed by aiogram's ``CallbackData`` (≤ 64 bytes),
and the keyboards under a job's messages.

Buttons already in chats: the Cancel (``c:<job>``) and result (``r:<action>:<job>``) buttons
keep the packed format they always had, so old results still rerun. The /settings, /forget
and /chatsettings buttons moved from ``s:u:…``/``s:c:…`` to ``su:…``/``sc:…``; an old one, like
any data no factory parses, matches no filter and gets the ``button-expired`` answer ("this
button has expired, ask again") from ``requests.expired``, never an exception.
"""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import t
from bot.places import Switch
from bot.rerun import Action


class CancelJob(CallbackData, prefix="c"):
    """✖️ under a progress message."""

    job_id: str


class RerunJob(CallbackData, prefix="r"):
    """🔁 / ➖ / ➕ / ♻️ under a result."""

    action: Action
    job_id: str


class UserSetting(CallbackData, prefix="su"):
    """A /settings or /forget button; only ``owner`` may press it (``arg``: a style name)."""

    owner: int
    action: str
    arg: str = ""


class ChatToggle(CallbackData, prefix="sc"):
    """An on/off button under /chatsettings."""

    key: Switch


class BuyPack(CallbackData, prefix="buy"):
    """The button under /buy for one pack."""

    pack_id: str


def button(text: str, data: CallbackData) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())


def fits(data: CallbackData) -> bool:
    """Whether ``data`` packs (no separator in a value, 64 bytes at most)."""
    try:
        data.pack()
    except ValueError:
        return False
    return True


def cancel_keyboard(job_id: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[
        button(t("tg-button-cancel"), CancelJob(job_id=job_id))]])


def result_keyboard(job_id: str) -> InlineKeyboardMarkup:
    def rerun(text_id: str, action: Action) -> InlineKeyboardButton:
        return button(t(text_id), RerunJob(action=action, job_id=job_id))

    return InlineKeyboardMarkup(inline_keyboard=[
        [rerun("tg-button-again", Action.AGAIN), rerun("tg-button-reuse", Action.REUSE)],
        [rerun("tg-button-weaker", Action.WEAKER), rerun("tg-button-stronger", Action.STRONGER)]])
