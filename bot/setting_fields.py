"""The keys of ``/set`` and ``/chatset``: each field's metadata, and one setter per field type.

Adapters list the fields (key, type, bounds, choices) for their menus and autocomplete; a
setter parses the raw text a user typed and returns the new value with the confirmation as a
message id and its arguments. Bad text raises ``OptionError`` carrying a message id.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from bot.errors import OptionError
from bot.i18n import LANGUAGE_NAMES, LOCALES, Msg, negotiate, t
from bot.limits import MAX_SAMPLES, MAX_SIDE, MAX_STEPS, MIN_SIDE, MIN_STEPS
from bot.options import SPEC_LIST, SPECS, Overrides, parse_value, quote

ON = {"on", "yes", "true", "1", "enable", "enabled", "allow"}
OFF = {"off", "no", "false", "0", "disable", "disabled", "deny", "none"}
LOCKABLE = ("strength", "steps", "cfg", "size", "aspect", "style", "negative_prompt",
            "provider", "model", "samples")
# The names /set and the slash commands use for options whose field name is long.
FRIENDLY = {"aspect": "ar", "negative_prompt": "negative", "samples": "count"}


class Kind(StrEnum):
    SWITCH = "switch"    # on/off
    NUMBER = "number"    # a whole number within bounds, or off
    CHOICE = "choice"    # one name from a list
    NAMES = "names"      # a list of names, or all
    WORDS = "words"      # add WORDS / remove WORDS / clear
    TEXT = "text"        # free text, or off
    OPTION = "option"    # a default for a request option (its spec parses it)


@dataclass(frozen=True, slots=True)
class SettingField:
    """One key: where its value is kept in the stored settings and how a value reads."""

    key: str
    kind: Kind
    path: tuple[str, ...]
    done: str                    # message id of the confirmation
    done_off: str = ""           # ... when the value is off, where that reads differently
    help: str = ""               # message id of the one-line help (an option: its spec's)
    low: int = 0
    high: int = 0
    off: object = None           # what "off" keeps (numbers)
    choices: tuple[str, ...] = ()
    source: str = ""             # names known at run time: "styles", "providers", "locales"
    op: Literal["set", "add", "remove"] = "set"

    def help_text(self) -> str:
        if self.kind is Kind.OPTION:
            return t("setting-help-default", help=SPECS[self.path[-1]].help)
        return t(self.help)


def _switch(field: SettingField, raw: str, current: object) -> tuple[object, Msg]:
    word = raw.strip().lower()
    if word not in ON | OFF:
        raise OptionError(msg=Msg("error-on-off"))
    on = word in ON
    return on, Msg("setting-on" if on else "setting-off", {"key": field.key})


def _number(field: SettingField, raw: str, current: object) -> tuple[object, Msg]:
    word = raw.strip().lower()
    value: int | None = None
    if word not in OFF:
        try:
            value = int(word)
        except ValueError:
            value = None
        if value is None or not field.low <= value <= field.high:
            raise OptionError(msg=Msg("error-setting-number", {
                "key": field.key, "low": field.low, "high": field.high}))
    stored = field.off if value is None else value
    done = field.done_off if not stored and field.done_off else field.done
    return stored, Msg(done, {"key": field.key, "value": stored or 0})


def _pick(field: SettingField, word: str) -> str | None:
    if field.source == "locales":
        return negotiate(word)
    spec = SPECS.get(word.lstrip("-").lower())
    return spec.field if spec is not None and spec.field in field.choices else None


def _choice(field: SettingField, raw: str, current: object) -> tuple[object, Msg]:
    word = raw.strip()
    if field.done_off and word.lower() in OFF:
        return None, Msg(field.done_off)
    name = _pick(field, word)
    if name is None:
        if field.source == "locales":
            raise OptionError(msg=Msg("error-unknown-language", {
                "code": word, "available": ", ".join(LOCALES)}))
        raise OptionError(msg=Msg("error-lock", {"name": quote(word),
                                                 "fields": ", ".join(field.choices)}))
    names = list(current) if isinstance(current, list) else []
    value: object = name
    if field.op == "add":
        value = sorted({*names, name})
    elif field.op == "remove":
        value = [n for n in names if n != name]
    locale = name if field.source == "locales" else None
    return value, Msg(field.done, {"key": name, "language": LANGUAGE_NAMES.get(name, name)},
                      locale=locale)


def _names(field: SettingField, raw: str, current: object) -> tuple[object, Msg]:
    word = raw.strip().lower()
    names = [] if word in ("all", "any", *OFF) else [
        name.strip() for name in re.split(r"[,\s]+", raw) if name.strip()]
    if not names:
        return names, Msg(field.done_off, {"key": field.key})
    return names, Msg(field.done, {"key": field.key, "names": ", ".join(names)})


def _words(field: SettingField, raw: str, current: object) -> tuple[object, Msg]:
    action, _, words = raw.strip().partition(" ")
    words_now = list(current) if isinstance(current, list) else []
    items = [w.strip().lower() for w in re.split(r"[,\n]+|\s+", words) if w.strip()]
    if action == "add" and items:
        words_now += [w for w in items if w not in words_now]
    elif action == "remove" and items:
        words_now = [w for w in words_now if w not in items]
    elif action == "clear":
        words_now = []
    else:
        raise OptionError(msg=Msg("error-banned-words"))
    return words_now, Msg(field.done, {"count": len(words_now)})


def _text(field: SettingField, raw: str, current: object) -> tuple[object, Msg]:
    text = "" if raw.strip().lower() in OFF else " ".join(raw.split())[:field.high]
    return text, Msg(field.done if text else field.done_off, {"text": text})


def _option(field: SettingField, raw: str, current: object) -> tuple[object, Msg]:
    name, parsed = parse_value(field.path[-1], raw)
    value = Overrides(**{name: parsed}).to_dict()[name]
    return value, Msg(field.done, {"key": name, "value": value})


SETTERS: Mapping[Kind, Callable[[SettingField, str, object], tuple[object, Msg]]] = {
    Kind.SWITCH: _switch, Kind.NUMBER: _number, Kind.CHOICE: _choice, Kind.NAMES: _names,
    Kind.WORDS: _words, Kind.TEXT: _text, Kind.OPTION: _option}


def set_value(field: SettingField, raw: str, current: object) -> tuple[object, Msg]:
    """Parse ``raw`` for ``field``; returns the value to keep and the confirmation."""
    return SETTERS[field.kind](field, raw, current)


def _options(done: str) -> tuple[SettingField, ...]:
    return tuple(SettingField(FRIENDLY.get(s.field, s.field), Kind.OPTION, ("defaults", s.field),
                              done) for s in SPEC_LIST)


def _policy(key: str, kind: Kind, done: str, **more: object) -> SettingField:
    path = ("policy", "locked" if key in ("lock", "unlock") else key)
    return SettingField(key, kind, path, done, help=f"setting-help-{key.replace('_', '-')}",
                        **more)  # type: ignore[arg-type]


_SWITCH = {"choices": ("on", "off")}
_CAP = {"done_off": "setting-off"}
_LANGUAGE = {"source": "locales", "help": "setting-help-language"}
CHAT_FIELDS: tuple[SettingField, ...] = (
    _policy("enabled", Kind.SWITCH, "setting-on", **_SWITCH),
    _policy("lock", Kind.CHOICE, "setting-locked", choices=LOCKABLE, op="add"),
    _policy("unlock", Kind.CHOICE, "setting-unlocked", choices=LOCKABLE, op="remove"),
    _policy("max_steps", Kind.NUMBER, "setting-number", low=MIN_STEPS, high=MAX_STEPS, **_CAP),
    _policy("max_size", Kind.NUMBER, "setting-number", low=MIN_SIDE, high=MAX_SIDE, **_CAP),
    _policy("max_images", Kind.NUMBER, "setting-number", low=1, high=MAX_SAMPLES, **_CAP),
    _policy("providers", Kind.NAMES, "setting-allowed", done_off="setting-allowed-all",
            source="providers"),
    _policy("styles", Kind.NAMES, "setting-allowed", done_off="setting-allowed-all",
            source="styles"),
    _policy("banned_words", Kind.WORDS, "setting-banned-words",
            choices=("add ", "remove ", "clear")),
    _policy("forced_negative", Kind.TEXT, "setting-forced-negative",
            done_off="setting-forced-negative-off", high=500),
    _policy("nsfw", Kind.SWITCH, "setting-on", **_SWITCH),
    _policy("cooldown", Kind.NUMBER, "setting-cooldown", low=0, high=86400, off=0),
    _policy("daily_limit", Kind.NUMBER, "setting-daily-limit", low=1, high=10000, off=0,
            done_off="setting-daily-limit-off"),
    SettingField("language", Kind.CHOICE, ("language",), "chat-language-set",
                 done_off="chat-language-cleared", **_LANGUAGE),  # type: ignore[arg-type]
    *_options("setting-chat-default"),
)
USER_FIELDS: tuple[SettingField, ...] = (
    *_options("setting-user-default"),
    SettingField("file", Kind.SWITCH, ("prefs", "file"), "setting-on",
                 help="setting-help-file", choices=("on", "off")),
    SettingField("language", Kind.CHOICE, ("language",), "language-set",
                 **_LANGUAGE),  # type: ignore[arg-type]
)


def find(fields: Iterable[SettingField], key: str) -> SettingField | None:
    """The field a typed key names (an option also by any of its aliases and flags)."""
    word = key.strip().lower().replace("-", "_").lstrip("_")
    spec = SPECS.get(key.strip().lstrip("-—").lower())
    for field in fields:
        if field.key == word or (field.kind is Kind.OPTION and spec is not None
                                 and field.path[-1] == spec.field):
            return field
    return None


def value_names(field: SettingField | None, *, styles: Iterable[str],
                providers: Iterable[str]) -> list[str]:
    """The names a field's value may take, for autocomplete (empty: free text)."""
    if field is None:
        return []
    source = {"styles": sorted(styles), "providers": list(providers), "locales": list(LOCALES)}
    if field.kind is Kind.OPTION and field.path[-1] in ("style", "provider"):
        return source[f"{field.path[-1]}s"]
    return list(field.choices) or source.get(field.source, [])


def key_value(args: str | None) -> tuple[str, str]:
    """``KEY VALUE`` as typed after a set command; an empty value where either is missing."""
    key, _, value = (args or "").strip().partition(" ")
    return key, value.strip()
