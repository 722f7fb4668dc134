"""Personal and chat settings as the commands see them: show, set one key, reset."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from bot.config import DefaultsConfig
from bot.errors import OptionError
from bot.i18n import DEFAULT, Msg, negotiate, t
from bot.limits import MAX_STEPS, MIN_STEPS, STEPS_STEP, STRENGTH_STEP
from bot.models import ChatRef, UserRef
from bot.options import Overrides, parse_value, quote
from bot.policy import describe_policy, on_off
from bot.setting_fields import CHAT_FIELDS, USER_FIELDS, Kind, SettingField, find, set_value
from bot.stored_settings import ChatPolicy, ChatSettings, UserSettings
from storage.base import Storage

# The settings read while one platform event is handled: the locale, the request's defaults
# and its preferences come from one read.
_READ: ContextVar[dict[str, UserSettings] | None] = ContextVar("settings_read", default=None)


@dataclass(frozen=True, slots=True)
class Starting:
    """The values a user's next request starts from (before any chat's rules)."""

    strength: float
    steps: int
    style: str | None
    file: bool


class Preferences:
    """Reads and writes the settings layers kept in storage."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    @staticmethod
    @contextmanager
    def per_event() -> Iterator[None]:
        """Within this block each user's settings are read from storage at most once
        (this event's own writes update what it reads)."""
        token = _READ.set({})
        try:
            yield
        finally:
            _READ.reset(token)

    async def user(self, user: UserRef) -> UserSettings:
        read = _READ.get()
        if read is not None and user.key in read:
            return read[user.key]  # frozen: callers cannot change what others read
        settings = UserSettings.load(await self.storage.user_settings(user.key))
        if read is not None:
            read[user.key] = settings
        return settings

    async def _save(self, user: UserRef, settings: UserSettings) -> None:
        await self.storage.set_user_settings(user.key, settings.dump())
        read = _READ.get()
        if read is not None:
            read[user.key] = settings

    async def user_defaults(self, user: UserRef) -> Overrides:
        return (await self.user(user)).overrides

    async def user_pref(self, user: UserRef, name: str) -> bool:
        return bool(getattr((await self.user(user)).prefs, name, False))

    async def starting(self, user: UserRef, base: DefaultsConfig) -> Starting:
        mine = await self.user(user)
        own = mine.overrides
        return Starting(strength=base.strength if own.strength is None else own.strength,
                        steps=base.steps if own.steps is None else own.steps,
                        style=own.style or base.style, file=mine.prefs.file)

    async def nudge(self, user: UserRef, key: str, up: bool, base: DefaultsConfig) -> Msg | None:
        """One press of a settings keyboard's −/+ button on ``strength`` or ``steps``: one
        step (``bot.limits``) within the bounds; None where the value is at a bound already."""
        now = await self.starting(user, base)
        if key == "strength":
            step = STRENGTH_STEP if up else -STRENGTH_STEP
            value: float = round(min(1.0, max(0.0, now.strength + step)), 2)
        else:
            step = STEPS_STEP if up else -STEPS_STEP
            value = min(MAX_STEPS, max(MIN_STEPS, now.steps + step))
        if value == getattr(now, key):
            return None
        return await self.set_user(user, key, f"{value:g}")

    async def language(self, user: UserRef) -> str | None:
        """The locale the user chose with ``/set language``, if any."""
        return negotiate((await self.user(user)).language)

    async def chat_language(self, chat: ChatRef) -> str | None:
        """The chat's default language set by its admins (``/chatset language xx``), if any."""
        return None if chat.private else negotiate((await self.chat(chat)).language)

    async def locale_for(self, user: UserRef, chat: ChatRef | None,
                         platform_language: str | None) -> str:
        """The language to answer ``user`` in: their ``/set language`` choice, else the chat's
        default (a group that speaks one language), else the platform's language tag for the
        user, else English."""
        return (await self.language(user)
                or (await self.chat_language(chat) if chat is not None else None)
                or negotiate(platform_language) or DEFAULT)

    @staticmethod
    def _user_field(key: str) -> SettingField:
        field = find(USER_FIELDS, key)
        if field is None:
            parse_value(key, "")  # an unknown key: raises the error that lists the options
            raise AssertionError(key)  # parse_value knows every option find() knows
        return field

    async def set_user(self, user: UserRef, key: str, value: str) -> Msg:
        """``/set key value``; returns the confirmation."""
        settings = await self.user(user)
        field = self._user_field(key)
        new, note = set_value(field, value, settings.read(field.path))
        await self._save(user, settings.changed(field.path, new))
        return note

    async def reset_user(self, user: UserRef, key: str | None = None) -> Msg:
        if key is None:
            await self._save(user, UserSettings())
            return Msg("settings-user-reset")
        field = self._user_field(key)
        await self._save(user, (await self.user(user)).changed(field.path, None))
        return Msg("settings-user-reset-key", {"key": field.path[-1]})

    async def describe_user(self, user: UserRef) -> list[str]:
        settings = await self.user(user)
        lines = [f"{k}: {v}" for k, v in settings.defaults.items()]
        lines += [f"{k}: {on_off(getattr(settings.prefs, k))}"
                  for k in sorted(settings.prefs.model_fields_set)]
        if settings.language:
            lines.append(f"language: {settings.language}")
        return lines or [t("settings-user-none")]

    async def chat(self, chat: ChatRef) -> ChatSettings:
        return ChatSettings.load(await self.storage.chat_settings(chat.key))

    async def chat_policy(self, chat: ChatRef) -> ChatPolicy:
        return (await self.chat(chat)).policy

    async def set_chat(self, chat: ChatRef, key: str, value: str) -> Msg:
        """``/chatset key value`` (the caller has checked admin rights)."""
        field = find(CHAT_FIELDS, key)
        if field is None:
            allowed = ", ".join(f.key for f in CHAT_FIELDS if f.kind is not Kind.OPTION)
            raise OptionError(msg=Msg("error-unknown-setting", {"key": quote(key.strip()),
                                                                "allowed": allowed}))
        settings = await self.chat(chat)
        new, note = set_value(field, value, settings.read(field.path))
        await self.storage.set_chat_settings(chat.key, settings.changed(field.path, new).dump())
        return note

    async def reset_chat(self, chat: ChatRef) -> Msg:
        await self.storage.set_chat_settings(chat.key, {})
        return Msg("settings-chat-reset")

    async def describe_chat(self, chat: ChatRef) -> list[str]:
        settings = await self.chat(chat)
        lines = describe_policy(settings.policy)
        lines += [t("setting-line-default", key=k, value=v) for k, v in settings.defaults.items()]
        if settings.language:
            lines.append(f"language: {settings.language}")
        return lines
