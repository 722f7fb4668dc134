"""Every button's callback data, packed and parsed by aiogram's ``CallbackData`` (≤ 64 bytes).

Buttons already in chats: the Cancel (``c:<job>``) and result (``r:<action>:<job>``) buttons
keep the packed format they always had, so old results still rerun. The /settings, /forget
and /chatsettings buttons moved from ``s:u:…``/``s:c:…`` to ``su:…``/``sc:…``; an old one, like
any data no factory parses, matches no filter and gets the ``button-expired`` answer ("this
button has expired, ask again") from ``buttons.expired``, never an exception.
"""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton

from bot.rerun import Action


class Toggle(StrEnum):
    """The on/off switches under /chatsettings."""

    ENABLED = "enabled"
    NSFW = "nsfw"


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

    key: Toggle


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
