"""What the buttons of a personal settings keyboard do, whatever the platform draws them as."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from bot.errors import OptionError
from bot.i18n import Msg
from bot.models import UserRef

if TYPE_CHECKING:
    from bot.app import App


class Press(StrEnum):
    """A button's action, as packed in its callback data."""

    STRENGTH_DOWN = "s-"
    STRENGTH_UP = "s+"
    STEPS_DOWN = "n-"
    STEPS_UP = "n+"
    STYLE = "y"  # with a style's name; without one, no style
    FILE = "f"  # the full-resolution file on or off
    RESET = "r"
    FORGET = "forget"  # the /forget question's answers
    KEEP = "keep"


class After(StrEnum):
    """What the keyboard's message shows after a press."""

    SETTINGS = "settings"  # the settings again, with the new values
    NOTE = "note"  # the press's answer in place of the question (forget, keep)
    SAME = "same"  # nothing changed: a value already at its bound


@dataclass(frozen=True, slots=True)
class Pressed:
    """A press's answer (a toast on the button) and what its message shows next."""

    note: Msg
    after: After


async def press(app: App, user: UserRef, action: str, name: str = "") -> Pressed:
    """Apply one settings or forget button pressed by ``user`` (its owner)."""
    prefs, defaults = app.preferences, app.config.defaults
    if action == Press.KEEP:
        return Pressed(Msg("tg-forget-kept"), After.NOTE)
    if action == Press.FORGET:
        return Pressed(Msg("tg-forget-done", {"count": await app.forget_user(user)}), After.NOTE)
    if action in (Press.STRENGTH_DOWN, Press.STRENGTH_UP, Press.STEPS_DOWN, Press.STEPS_UP):
        note = await prefs.nudge(user, "strength" if action[0] == "s" else "steps",
                                 action[1] == "+", defaults)
        if note is None:
            return Pressed(Msg("tg-set-at-limit"), After.SAME)
    elif action == Press.STYLE and not name:
        note = await prefs.reset_user(user, "style")
    elif action == Press.STYLE:
        if name not in app.config.styles:
            raise OptionError(msg=Msg("error-style-gone", {"name": repr(name)}))
        note = await prefs.set_user(user, "style", name)
    elif action == Press.FILE:
        now = await prefs.starting(user, defaults)
        note = await prefs.set_user(user, "file", "off" if now.file else "on")
    elif action == Press.RESET:
        note = await prefs.reset_user(user)
    else:
        raise OptionError(msg=Msg("error-button-stale"))
    return Pressed(note, After.SETTINGS)
