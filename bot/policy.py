"""A chat's moderation policy as a request meets it (pure functions); ``/chatset`` changes
it through ``bot.setting_fields``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.errors import PolicyError
from bot.i18n import Msg
from bot.stored_settings import ChatSettings


@dataclass(frozen=True, slots=True)
class ChatPolicy:
    enabled: bool = True
    locked: frozenset[str] = frozenset()
    max_steps: int | None = None
    max_side: int | None = None
    max_images: int | None = None
    allowed_providers: tuple[str, ...] = ()
    allowed_styles: tuple[str, ...] = ()
    banned_words: tuple[str, ...] = ()
    forced_negative: str = ""
    nsfw: bool = False
    cooldown: float = 0.0
    daily_limit: int = 0

    @classmethod
    def from_settings(cls, settings: ChatSettings) -> ChatPolicy:
        rules = settings.policy
        return cls(enabled=rules.enabled, locked=frozenset(rules.locked),
                   max_steps=rules.max_steps, max_side=rules.max_size,
                   max_images=rules.max_images, allowed_providers=tuple(rules.providers),
                   allowed_styles=tuple(rules.styles), banned_words=tuple(rules.banned_words),
                   forced_negative=rules.forced_negative, nsfw=rules.nsfw,
                   cooldown=float(rules.cooldown), daily_limit=rules.daily_limit)


def banned_word_in(text: str, banned: tuple[str, ...]) -> str | None:
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


def describe_policy(policy: ChatPolicy) -> list[str]:
    """Human lines for /chatsettings."""
    return [
        f"enabled: {'on' if policy.enabled else 'off'}",
        f"locked: {', '.join(sorted(policy.locked)) or 'none'}",
        f"max_steps: {policy.max_steps or 'off'}", f"max_size: {policy.max_side or 'off'}",
        f"max_images: {policy.max_images or 'off'}",
        f"providers: {', '.join(policy.allowed_providers) or 'all'}",
        f"styles: {', '.join(policy.allowed_styles) or 'all'}",
        f"banned_words: {len(policy.banned_words)}",
        f"forced_negative: {policy.forced_negative or 'off'}",
        f"nsfw: {'on' if policy.nsfw else 'off'}", f"cooldown: {policy.cooldown:g} s",
        f"daily_limit: {policy.daily_limit or 'off'}",
    ]
