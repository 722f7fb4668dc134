"""Discord's documented size limits, checked the way the API reports them (400, code 50035)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

JSON = dict[str, Any]
Problem = tuple[tuple[str | int, ...], str, str]  # (path, error code, message)

INVALID_FORM_BODY = 50035
EMPTY_MESSAGE = {"message": "Cannot send an empty message", "code": 50006}
TOO_LARGE = {"message": "Request entity too large", "code": 40005}
COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")
# Discord's client locales: the only keys a *_localizations map may have.
LOCALES = frozenset({
    "id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu", "nl",
    "no", "pl", "pt-BR", "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru", "uk", "hi",
    "th", "zh-CN", "ja", "zh-TW", "ko"})


def form_error(problems: list[Problem]) -> JSON | None:
    """The ``Invalid Form Body`` reply for ``problems``, or None when there are none."""
    if not problems:
        return None
    errors: JSON = {}
    for path, code, message in problems:
        node = errors
        for key in path:
            node = node.setdefault(str(key), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})
    return {"message": "Invalid Form Body", "code": INVALID_FORM_BODY, "errors": errors}


def _too_long(path: tuple[str | int, ...], value: Any, limit: int) -> Iterator[Problem]:
    if isinstance(value, str) and len(value) > limit:
        yield path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."


def _embed_problems(i: int, embed: JSON) -> Iterator[Problem]:
    at: tuple[str | int, ...] = ("embeds", i)
    yield from _too_long((*at, "title"), embed.get("title"), 256)
    yield from _too_long((*at, "description"), embed.get("description"), 4096)
    yield from _too_long((*at, "footer", "text"), (embed.get("footer") or {}).get("text"), 2048)
    yield from _too_long((*at, "author", "name"), (embed.get("author") or {}).get("name"), 256)
    fields = embed.get("fields") or []
    if len(fields) > 25:
        yield (*at, "fields"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
    for j, fld in enumerate(fields):
        for key, limit in (("name", 256), ("value", 1024)):
            if not fld.get(key):
                yield (*at, "fields", j, key), "BASE_TYPE_REQUIRED", "This field is required"
            yield from _too_long((*at, "fields", j, key), fld.get(key), limit)


def embeds_total(embeds: list[JSON]) -> int:
    """Characters Discord counts towards the 6000 total across a message's embeds."""
    total = 0
    for e in embeds:
        texts = [e.get("title"), e.get("description"), (e.get("footer") or {}).get("text"),
                 (e.get("author") or {}).get("name")]
        texts += [f.get(k) for f in e.get("fields") or [] for k in ("name", "value")]
        total += sum(len(t) for t in texts if isinstance(t, str))
    return total


def _component_problems(components: list[JSON], v2: bool) -> Iterator[Problem]:
    if not v2 and len(components) > 5:
        yield ("components",), "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."
    seen: set[str] = set()
    for i, row in enumerate(components):
        children = (row.get("components") or []) if row.get("type") == 1 else []
        if row.get("type") == 1 and len(children) > 5:
            yield ("components", i, "components"), "BASE_TYPE_MAX_LENGTH", \
                "Must be 5 or fewer in length."
        for j, comp in enumerate(children):
            at: tuple[str | int, ...] = ("components", i, "components", j)
            custom_id = comp.get("custom_id")
            if comp.get("type") == 2 and comp.get("style") == 5:
                if not comp.get("url") or custom_id:
                    yield at, "COMPONENT_LAYOUT_WIDTH_EXCEEDED", "Link buttons need a url only"
            elif comp.get("type") == 2 and comp.get("style") == 6:
                # Premium buttons carry a sku_id and nothing a user could label them with.
                if not comp.get("sku_id") or any(comp.get(k) for k in (
                        "custom_id", "label", "url", "emoji")):
                    yield at, "BUTTON_COMPONENT_INVALID", "Premium buttons take only a sku_id"
            elif comp.get("type") in (2, 3, 5, 6, 7, 8) and not custom_id:
                yield (*at, "custom_id"), "BASE_TYPE_REQUIRED", "This field is required"
            yield from _too_long((*at, "custom_id"), custom_id, 100)
            yield from _too_long((*at, "label"), comp.get("label"), 80)
            if custom_id and custom_id in seen:
                yield (*at, "custom_id"), "COMPONENT_CUSTOM_ID_DUPLICATED", \
                    "Component custom id cannot be duplicated"
            if custom_id:
                seen.add(custom_id)


def message_problems(data: JSON) -> list[Problem]:
    """What Discord rejects in a message create/edit body."""
    problems: list[Problem] = list(_too_long(("content",), data.get("content"), 2000))
    embeds = data.get("embeds") or []
    if len(embeds) > 10:
        problems.append((("embeds",), "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length."))
    for i, embed in enumerate(embeds):
        problems.extend(_embed_problems(i, embed))
    if embeds_total(embeds) > 6000:
        problems.append((("embeds",), "MAX_EMBED_SIZE_EXCEEDED",
                         "Embed size exceeds maximum size of 6000"))
    v2 = bool((data.get("flags") or 0) & (1 << 15))
    problems.extend(_component_problems(data.get("components") or [], v2))
    return problems


def modal_problems(data: JSON) -> list[Problem]:
    """What Discord rejects in a modal (interaction callback type 9)."""
    problems: list[Problem] = []
    if not data.get("title") or len(data["title"]) > 45:
        problems.append((("data", "title"), "BASE_TYPE_BAD_LENGTH",
                         "Must be between 1 and 45 in length."))
    if not data.get("custom_id") or len(data["custom_id"]) > 100:
        problems.append((("data", "custom_id"), "BASE_TYPE_BAD_LENGTH",
                         "Must be between 1 and 100 in length."))
    rows = data.get("components") or []
    if not 1 <= len(rows) <= 5:
        problems.append((("data", "components"), "BASE_TYPE_BAD_LENGTH",
                         "Must be between 1 and 5 in length."))
    for i, row in enumerate(rows):
        label = row.get("label")
        inner = row.get("components") or [row.get("component") or {}]
        for comp in inner:
            label = comp.get("label", label)
            if comp.get("type") == 4 and comp.get("max_length", 0) > 4000:
                problems.append((("data", "components", i), "BASE_TYPE_MAX",
                                 "max_length above 4000"))
        if label is not None and len(label) > 45:
            problems.append((("data", "components", i, "label"), "BASE_TYPE_MAX_LENGTH",
                             "Must be 45 or fewer in length."))
    return problems


def choices_problems(data: JSON) -> list[Problem]:
    """What Discord rejects in an autocomplete result (callback type 8)."""
    choices = data.get("choices") or []
    problems: list[Problem] = []
    if len(choices) > 25:
        problems.append((("data", "choices"), "BASE_TYPE_MAX_LENGTH",
                         "Must be 25 or fewer in length."))
    for i, choice in enumerate(choices):
        name = choice.get("name") or ""
        if not 1 <= len(name) <= 100:
            problems.append((("data", "choices", i, "name"), "BASE_TYPE_BAD_LENGTH",
                             "Must be between 1 and 100 in length."))
        problems.extend(_too_long(("data", "choices", i, "value"), choice.get("value"), 100))
    return problems


def command_problems(commands: list[JSON]) -> list[Problem]:
    """What Discord rejects in a bulk command overwrite (PUT .../commands)."""
    problems: list[Problem] = []
    for i, cmd in enumerate(commands):
        name = cmd.get("name") or ""
        if cmd.get("type", 1) == 1:
            if not COMMAND_NAME.match(name) or name != name.lower():
                problems.append(((i, "name"), "APPLICATION_COMMAND_INVALID_NAME",
                                 "Command name is invalid"))
            desc = cmd.get("description") or ""
            if not 1 <= len(desc) <= 100:
                problems.append(((i, "description"), "BASE_TYPE_BAD_LENGTH",
                                 "Must be between 1 and 100 in length."))
        elif not 1 <= len(name) <= 32:
            problems.append(((i, "name"), "BASE_TYPE_BAD_LENGTH",
                             "Must be between 1 and 32 in length."))
        problems.extend(_localization_problems((i,), cmd, slash=cmd.get("type", 1) == 1))
        problems.extend(_option_problems((i,), cmd.get("options") or []))
    return problems


def _localization_problems(at: tuple[str | int, ...], item: JSON, *, slash: bool = True,
                           name_max: int = 32) -> Iterator[Problem]:
    """Names and descriptions per locale follow the same rules as the defaults."""
    for field, longest in (("name", name_max), ("description", 100)):
        for locale, value in (item.get(f"{field}_localizations") or {}).items():
            here = (*at, f"{field}_localizations", locale)
            if locale not in LOCALES:
                yield here, "LOCALE_INVALID", "Invalid locale"
            elif field == "name" and slash and (not COMMAND_NAME.match(value)
                                                or value != value.lower()):
                yield here, "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
            elif not 1 <= len(value) <= longest:
                yield here, "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {longest} in length."


def _option_problems(at: tuple[str | int, ...], options: list[JSON]) -> Iterator[Problem]:
    if len(options) > 25:
        yield (*at, "options"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
    optional_seen = False
    for j, opt in enumerate(options):
        here = (*at, "options", j)
        name = opt.get("name") or ""
        if not COMMAND_NAME.match(name) or name != name.lower():
            yield (*here, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
        if not 1 <= len(opt.get("description") or "") <= 100:
            yield (*here, "description"), "BASE_TYPE_BAD_LENGTH", \
                "Must be between 1 and 100 in length."
        yield from _localization_problems(here, opt)
        for k, choice in enumerate(opt.get("choices") or []):
            yield from _localization_problems((*here, "choices", k), choice, slash=False,
                                              name_max=100)
        if len(opt.get("choices") or []) > 25:
            yield (*here, "choices"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
        if opt.get("type") in (1, 2):
            yield from _option_problems(here, opt.get("options") or [])
        elif opt.get("required"):
            if optional_seen:
                yield (*here, "required"), "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID", \
                    "Required options must be placed before non-required options"
        else:
            optional_seen = True
