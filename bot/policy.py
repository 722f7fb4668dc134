"""A chat's moderation policy as a request meets it (pure functions); ``/chatset`` changes
it through ``bot.setting_fields``."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.errors import PolicyError
from bot.i18n import Msg, t
from bot.stored_settings import ChatPolicy


def banned_word_in(text: str, banned: Sequence[str]) -> str | None:
    """The first banned word or phrase found as whole words, case-insensitively."""
    lowered = text.casefold()
    for word in banned:
        if re.search(rf"(?<!\w){re.escape(word.casefold())}(?!\w)", lowered):
            return word
    return None


def check_text(policy: ChatPolicy, *texts: str) -> None:
    """Refuse a request whose prompt uses a banned word."""
    if not policy.enabled:
        raise PolicyError(msg=Msg("error-chat-disabled"))
    for text in texts:
        if banned_word_in(text, policy.banned_words):
            raise PolicyError(msg=Msg("error-banned-word"))


def on_off(value: bool) -> str:
    """A switch's state as the reader's word for on or off."""
    return t("value-on" if value else "value-off")


def describe_policy(policy: ChatPolicy) -> list[str]:
    """Human lines for /chatsettings (keys as typed in /chatset, values in the reader's words)."""
    off, none, every = t("value-off"), t("value-none"), t("value-all")
    return [
        f"enabled: {on_off(policy.enabled)}",
        f"locked: {', '.join(sorted(policy.locked)) or none}",
        f"max_steps: {policy.max_steps or off}", f"max_size: {policy.max_size or off}",
        f"max_images: {policy.max_images or off}",
        f"providers: {', '.join(policy.providers) or every}",
        f"styles: {', '.join(policy.styles) or every}",
        f"banned_words: {len(policy.banned_words)}",
        f"forced_negative: {policy.forced_negative or off}",
        f"nsfw: {on_off(policy.nsfw)}", f"cooldown: {policy.cooldown:g} s",
        f"daily_limit: {policy.daily_limit or off}",
    ]
