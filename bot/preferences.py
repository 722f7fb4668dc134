"""Personal and chat settings as the commands see them: show, set one key, reset."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from copy import deepcopy
from typing import Any

from bot.errors import OptionError
from bot.i18n import DEFAULT, LANGUAGE_NAMES, LOCALES, Msg, negotiate, render
from bot.models import ChatRef, UserRef
from bot.options import Overrides, parse_value
from bot.policy import ChatPolicy, change_chat_setting, chat_defaults, describe_policy
from storage.base import Storage

USER_PREFS = {"file": "on/off: also send the full-resolution file"}
LANGUAGE = "language"  # /set language xx: overrides the platform's language for this user
# The settings read while one platform event is handled: the locale, the request's defaults
# and its preferences come from one read.
_READ: ContextVar[dict[str, dict[str, Any]] | None] = ContextVar("settings_read", default=None)


def _switch(value: str) -> bool:
    word = value.strip().lower()
    if word in ("on", "yes", "true", "1"):
        return True
    if word in ("off", "no", "false", "0"):
        return False
    raise OptionError("Use on or off.")


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

    async def user(self, user: UserRef) -> dict[str, Any]:
        read = _READ.get()
        if read is not None and user.key in read:
            return deepcopy(read[user.key])  # callers change what they get before writing
        settings = await self.storage.user_settings(user.key)
        if read is not None:
            read[user.key] = deepcopy(settings)
        return settings

    async def _save(self, user: UserRef, settings: dict[str, Any]) -> None:
        await self.storage.set_user_settings(user.key, settings)
        read = _READ.get()
        if read is not None:
            read[user.key] = deepcopy(settings)

    async def user_defaults(self, user: UserRef) -> Overrides:
        return Overrides.from_dict((await self.user(user)).get("defaults", {}))

    async def user_pref(self, user: UserRef, name: str) -> bool:
        return bool((await self.user(user)).get("prefs", {}).get(name, False))

    async def language(self, user: UserRef) -> str | None:
        """The locale the user chose with ``/set language``, if any."""
        return negotiate(str((await self.user(user)).get("language") or "")) or None

    async def chat_language(self, chat: ChatRef) -> str | None:
        """The chat's default language set by its admins (``/chatset language xx``), if any."""
        if chat.private:
            return None
        return negotiate(str((await self.chat(chat)).get(LANGUAGE) or "")) or None

    async def locale_for(self, user: UserRef, chat: ChatRef | None,
                         platform_language: str | None) -> str:
        """The language to answer ``user`` in: their ``/set language`` choice, else the chat's
        default (a group that speaks one language), else the platform's language tag for the
        user, else English."""
        return (await self.language(user)
                or (await self.chat_language(chat) if chat is not None else None)
                or negotiate(platform_language) or DEFAULT)

    @staticmethod
    def _locale(value: str) -> str:
        locale = negotiate(value.strip())
        if locale is None:
            raise OptionError(msg=Msg("error-unknown-language", {
                "code": value.strip(), "available": ", ".join(LOCALES)}))
        return locale

    async def set_user(self, user: UserRef, key: str, value: str) -> str:
        """``/set key value``; returns a confirmation sentence."""
        settings = await self.user(user)
        key = key.strip().lower()
        if key == LANGUAGE:
            locale = self._locale(value)
            settings[LANGUAGE] = locale
            await self._save(user, settings)
            return render("language-set", locale, language=LANGUAGE_NAMES[locale])
        if key in USER_PREFS:
            prefs = dict(settings.get("prefs", {}))
            prefs[key] = _switch(value)
            settings["prefs"] = prefs
            await self._save(user, settings)
            return f"{key} is now {'on' if prefs[key] else 'off'}."
        field, parsed = parse_value(key, value)
        defaults = dict(settings.get("defaults", {}))
        defaults[field] = Overrides(**{field: parsed}).to_dict()[field]
        settings["defaults"] = defaults
        await self._save(user, settings)
        return f"Your default {field} is now {defaults[field]}."

    async def reset_user(self, user: UserRef, key: str | None = None) -> str:
        settings = await self.user(user)
        if key is None:
            await self._save(user, {})
            return "Your settings are back to the defaults."
        if key == LANGUAGE:
            settings.pop(LANGUAGE, None)
            await self._save(user, settings)
            return f"Your {key} is back to the default."
        field, _ = parse_value(key, "1") if key not in USER_PREFS else (key, None)
        settings.get("defaults", {}).pop(field, None)
        settings.get("prefs", {}).pop(field, None)
        await self._save(user, settings)
        return f"Your {field} is back to the default."

    async def describe_user(self, user: UserRef) -> list[str]:
        settings = await self.user(user)
        lines = [f"{k}: {v}" for k, v in settings.get("defaults", {}).items()]
        lines += [f"{k}: {'on' if v else 'off'}" for k, v in settings.get("prefs", {}).items()]
        if settings.get(LANGUAGE):
            lines.append(f"{LANGUAGE}: {settings[LANGUAGE]}")
        return lines or ["(none: the chat's and the bot's defaults apply)"]

    async def chat(self, chat: ChatRef) -> dict[str, Any]:
        return await self.storage.chat_settings(chat.key)

    async def chat_policy(self, chat: ChatRef) -> ChatPolicy:
        return ChatPolicy.from_settings(await self.chat(chat))

    async def set_chat(self, chat: ChatRef, key: str, value: str) -> str:
        """``/chatset key value`` (the caller has checked admin rights)."""
        if key.strip().lower() == LANGUAGE:
            return await self._set_chat_language(chat, value)
        new, message = change_chat_setting(await self.chat(chat), key, value)
        await self.storage.set_chat_settings(chat.key, new)
        return message

    async def _set_chat_language(self, chat: ChatRef, value: str) -> str:
        settings = await self.chat(chat)
        if value.strip().lower() in ("off", "none"):
            settings.pop(LANGUAGE, None)
            await self.storage.set_chat_settings(chat.key, settings)
            return render("chat-language-cleared")
        locale = settings[LANGUAGE] = self._locale(value)
        await self.storage.set_chat_settings(chat.key, settings)
        return render("chat-language-set", locale, language=LANGUAGE_NAMES[locale])

    async def reset_chat(self, chat: ChatRef) -> str:
        await self.storage.set_chat_settings(chat.key, {})
        return "This chat's settings are back to the defaults."

    async def describe_chat(self, chat: ChatRef) -> list[str]:
        settings = await self.chat(chat)
        defaults = chat_defaults(settings).to_dict()
        lines = describe_policy(ChatPolicy.from_settings(settings))
        lines += [f"default {k}: {v}" for k, v in defaults.items()]
        if settings.get(LANGUAGE):
            lines.append(f"{LANGUAGE}: {settings[LANGUAGE]}")
        return lines
