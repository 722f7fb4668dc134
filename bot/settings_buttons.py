"""A personal settings keyboard, whatever the platform draws it as: its buttons, and what a
press does."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from bot.errors import OptionError
from bot.i18n import Msg, t
from bot.models import UserRef
from bot.policy import on_off

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


STYLES_PER_ROW = 3


@dataclass(frozen=True, slots=True)
class Key:
    """A button: its label in the reader's language and its action (``arg``: a style's name)."""

    label: str
    action: Press
    arg: str = ""


def _ticked(label: str, on: bool) -> str:
    return f"✓ {label}" if on else label


async def keyboard(app: App, user: UserRef,
                   packs: Callable[[str], bool] = lambda name: True) -> list[list[Key]]:
    """The settings keyboard's rows: strength and steps down/up, a button per style (those
    whose name ``packs`` into the platform's button data) and none, the file switch, reset."""
    now = await app.preferences.starting(user, app.config.defaults)
    styles = [Key(_ticked(name, name == now.style), Press.STYLE, name)
              for name in sorted(app.config.styles) if packs(name)]
    styles.append(Key(_ticked(t("settings-key-no-style"), now.style is None), Press.STYLE))
    return [[Key(t("settings-key-strength-down"), Press.STRENGTH_DOWN),
             Key(t("settings-key-strength-up"), Press.STRENGTH_UP)],
            [Key(t("settings-key-steps-down"), Press.STEPS_DOWN),
             Key(t("settings-key-steps-up"), Press.STEPS_UP)],
            *(styles[i:i + STYLES_PER_ROW] for i in range(0, len(styles), STYLES_PER_ROW)),
            [Key(t("settings-key-file", state=on_off(now.file)), Press.FILE)],
            [Key(t("settings-key-reset"), Press.RESET)]]


def forget_keys() -> list[list[Key]]:
    """The answers to the question before a user's data is erased."""
    return [[Key(t("forget-key-erase"), Press.FORGET), Key(t("forget-key-keep"), Press.KEEP)]]


@dataclass(frozen=True, slots=True)
class Pressed:
    """A press's answer (a toast on the button) and what its message shows next."""

    note: Msg
    after: After


async def press(app: App, user: UserRef, action: str, name: str = "") -> Pressed:
    """Apply one settings or forget button pressed by ``user`` (its owner)."""
    prefs, defaults = app.preferences, app.config.defaults
    if action == Press.KEEP:
        return Pressed(Msg("forget-kept"), After.NOTE)
    if action == Press.FORGET:
        return Pressed(Msg("forget-done", {"count": await app.forget_user(user)}), After.NOTE)
    if action in (Press.STRENGTH_DOWN, Press.STRENGTH_UP, Press.STEPS_DOWN, Press.STEPS_UP):
        note = await prefs.nudge(user, "strength" if action[0] == "s" else "steps",
                                 action[1] == "+", defaults)
        if note is None:
            return Pressed(Msg("setting-at-limit"), After.SAME)
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
