"""A chat's moderation policy and the admin commands that change it (pure functions).

Chat settings are stored as ``{"defaults": {option: value}, "policy": {key: value}}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.errors import OptionError, PolicyError
from bot.limits import MAX_SAMPLES, MAX_SIDE, MAX_STEPS, MIN_SIDE, MIN_STEPS
from bot.options import SPECS, Overrides, parse_value, quote

LOCKABLE = ("strength", "steps", "cfg", "size", "aspect", "style", "negative_prompt",
            "provider", "model", "samples")
ON = {"on", "yes", "true", "1", "enable", "enabled", "allow"}
OFF = {"off", "no", "false", "0", "disable", "disabled", "deny", "none"}

POLICY_HELP: dict[str, str] = {
    "enabled": "on/off: whether the bot answers in this chat",
    "lock": "FIELD: the chat's value wins over the user's (unlock FIELD to undo)",
    "max_steps": "N or off: cap on sampling steps",
    "max_size": "N or off: cap on the longest side in pixels",
    "max_images": "N or off: cap on images per request",
    "providers": "a,b or all: backends members may use",
    "styles": "a,b or all: styles members may use",
    "banned_words": "add WORDS / remove WORDS / clear: refused words (whole words)",
    "forced_negative": "TEXT or off: always appended to the negative prompt",
    "nsfw": "on/off: allow NSFW results (safety filter off)",
    "cooldown": "SECONDS: wait between one member's requests",
    "daily_limit": "N or off: requests per member per day in this chat",
    "language": "xx or off: the chat's language for members who chose none (/set language)",
}


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
    def from_settings(cls, settings: dict[str, Any]) -> ChatPolicy:
        raw = settings.get("policy", {})
        return cls(
            enabled=bool(raw.get("enabled", True)),
            locked=frozenset(raw.get("locked", ())),
            max_steps=raw.get("max_steps"), max_side=raw.get("max_size"),
            max_images=raw.get("max_images"),
            allowed_providers=tuple(raw.get("providers", ())),
            allowed_styles=tuple(raw.get("styles", ())),
            banned_words=tuple(raw.get("banned_words", ())),
            forced_negative=str(raw.get("forced_negative", "")),
            nsfw=bool(raw.get("nsfw", False)), cooldown=float(raw.get("cooldown", 0)),
            daily_limit=int(raw.get("daily_limit", 0)),
        )


def chat_defaults(settings: dict[str, Any]) -> Overrides:
    return Overrides.from_dict(settings.get("defaults", {}))


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
        raise PolicyError("The bot is switched off in this chat by its admins.")
    for text in texts:
        if banned_word_in(text, policy.banned_words):
            raise PolicyError("Your prompt uses a word this chat does not allow; nothing was "
                              "charged.")


def _switch(value: str) -> bool:
    word = value.strip().lower()
    if word in ON:
        return True
    if word in OFF:
        return False
    raise OptionError("Use on or off.")


def _cap(value: str, low: int, high: int, what: str) -> int | None:
    word = value.strip().lower()
    if word in OFF:
        return None
    try:
        number = int(word)
    except ValueError:
        raise OptionError(f"{what} must be a whole number from {low} to {high}, or off.") from None
    if not low <= number <= high:
        raise OptionError(f"{what} must be a whole number from {low} to {high}, or off.")
    return number


def _names(value: str) -> list[str]:
    word = value.strip().lower()
    if word in ("all", "any", *OFF):
        return []
    return [name.strip() for name in re.split(r"[,\s]+", value) if name.strip()]


def _lock_field(name: str) -> str:
    spec = SPECS.get(name.strip().lstrip("-").lower())
    if spec is None or spec.field not in LOCKABLE:
        raise OptionError(f"Cannot lock {quote(name)!r}; lockable: {', '.join(LOCKABLE)}.")
    return spec.field


def change_chat_setting(settings: dict[str, Any], key: str, value: str) -> tuple[dict[str, Any],
                                                                                 str]:
    """Apply ``/chatset key value``; returns the new settings and a confirmation sentence."""
    new: dict[str, Any] = {"defaults": dict(settings.get("defaults", {})),
                           "policy": dict(settings.get("policy", {}))}
    policy = new["policy"]
    key = key.strip().lower().replace("-", "_")
    if key in ("enabled", "nsfw"):
        policy[key] = _switch(value)
        return new, f"{key} is now {'on' if policy[key] else 'off'}."
    if key in ("lock", "unlock"):
        field = _lock_field(value)
        locked = set(policy.get("locked", ()))
        (locked.add if key == "lock" else locked.discard)(field)
        policy["locked"] = sorted(locked)
        return new, f"{field} is {'locked' if key == 'lock' else 'unlocked'}."
    if key in ("max_steps", "max_size", "max_images"):
        bounds = {"max_steps": (MIN_STEPS, MAX_STEPS), "max_size": (MIN_SIDE, MAX_SIDE),
                  "max_images": (1, MAX_SAMPLES)}[key]
        policy[key] = _cap(value, *bounds, key)
        return new, f"{key} is now {policy[key] or 'off'}."
    if key in ("providers", "styles"):
        policy[key] = _names(value)
        return new, f"Allowed {key}: {', '.join(policy[key]) or 'all'}."
    if key == "banned_words":
        action, _, words = value.strip().partition(" ")
        current = list(policy.get("banned_words", ()))
        items = [w.strip().lower() for w in re.split(r"[,\n]+|\s+", words) if w.strip()]
        if action == "add" and items:
            current += [w for w in items if w not in current]
        elif action == "remove" and items:
            current = [w for w in current if w not in items]
        elif action == "clear":
            current = []
        else:
            raise OptionError("Use: banned_words add WORDS, banned_words remove WORDS, or "
                              "banned_words clear.")
        policy["banned_words"] = current
        return new, f"{len(current)} banned word{'s' if len(current) != 1 else ''}."
    if key == "forced_negative":
        text = "" if value.strip().lower() in OFF else " ".join(value.split())[:500]
        policy["forced_negative"] = text
        return new, f"Forced negative prompt: {text or 'off'}."
    if key == "cooldown":
        seconds = _cap(value, 0, 86400, "cooldown") or 0
        policy["cooldown"] = seconds
        return new, f"Cooldown: {seconds} s."
    if key == "daily_limit":
        policy["daily_limit"] = _cap(value, 1, 10000, "daily_limit") or 0
        return new, f"Daily limit: {policy['daily_limit'] or 'off'}."
    if key in SPECS:
        field, parsed = parse_value(key, value)
        new["defaults"][field] = Overrides(**{field: parsed}).to_dict()[field]
        return new, f"Chat default {field} is now {new['defaults'][field]}."
    allowed = ", ".join([*POLICY_HELP, "or any option name"])
    raise OptionError(f"Unknown setting {quote(key)!r}. Settings: {allowed}.")


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
