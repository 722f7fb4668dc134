"""Message ids plus parameters rendered as text for a locale, from the gettext catalogues.

Why gettext through Babel and not Fluent: aiogram's own i18n is built on Babel's gettext
catalogues, Babel also brings CLDR plural rules and number formats, and PO files are what
translators' tools (Weblate, Poedit) read. The catalogues ship as ``bot/locales/*.po`` and are
compiled in memory on first use, so a fresh clone and the wheel need no build step.

Ids are symbolic (``error-queue-full``); the English catalogue holds the English text. A
message with a plural form takes its number from the ``count`` parameter. The locale of the
current request lives in a context variable that adapters set once per update (as aiogram's
``I18n`` does), so code deep in the core renders for the right reader without passing it down.
"""

from __future__ import annotations

import gettext
import io
import math
import string
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from importlib import resources

from babel.dates import format_timedelta
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent

DEFAULT = "en"
LOCALES = ("en", "ru", "es", "pt_BR", "id", "fa", "tr", "uk", "de")
# The names users type and see for /set language.
LANGUAGE_NAMES = {"en": "English", "ru": "Русский", "es": "Español", "pt_BR": "Português (Brasil)",
                  "id": "Bahasa Indonesia", "fa": "فارسی", "tr": "Türkçe", "uk": "Українська",
                  "de": "Deutsch"}

current_locale: ContextVar[str] = ContextVar("current_locale", default=DEFAULT)


@dataclass(frozen=True, slots=True)
class Msg:
    """A message id with its parameters: what the core hands over instead of text."""

    id: str
    params: Mapping[str, object] = field(default_factory=dict)
    locale: str | None = None  # set where the message must be read in one language

    def render(self, locale: str | None = None) -> str:
        return render(self.id, self.locale or locale, **self.params)


@dataclass(frozen=True, slots=True)
class Duration:
    """A span of time inside a message, worded by CLDR for the reader ("12 секунд")."""

    seconds: float

    def render(self, locale: str) -> str:
        # Under a minute stays in seconds ("55 seconds", not "1 minute"); longer rounds up to
        # whole minutes, so a wait is never told shorter than it is.
        seconds = self.seconds if self.seconds < 60 else math.ceil(self.seconds / 60) * 60
        return format_timedelta(timedelta(seconds=seconds), locale=locale, threshold=1)


def negotiate(code: str | None) -> str | None:
    """The shipped locale for a platform's language tag ('pt-BR', 'ru-RU', 'pt'), or None."""
    if not code:
        return None
    tag = code.replace("-", "_")
    for loc in LOCALES:
        if loc.lower() == tag.lower():
            return loc
    language = tag.split("_")[0].lower()
    return next((loc for loc in LOCALES if loc.split("_")[0] == language), None)


@contextmanager
def using(locale: str | None) -> Iterator[None]:
    """Render for ``locale`` inside the block (an adapter's courier, outside any update)."""
    token = current_locale.set(negotiate(locale) or DEFAULT)
    try:
        yield
    finally:
        current_locale.reset(token)


@cache
def catalogue(locale: str) -> Catalog:
    """The parsed PO file of a shipped locale."""
    source = resources.files("bot.locales").joinpath(f"{locale}.po")
    with source.open("rb") as fp:
        return read_po(fp, locale=locale)


@cache
def _translations(locale: str) -> gettext.GNUTranslations:
    buffer = io.BytesIO()
    write_mo(buffer, catalogue(locale))
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def _format(value: object, locale: str) -> str:
    # bool is an int; floats get the locale's decimal sign. Seeds and ids are passed as str.
    if isinstance(value, Msg | Duration):  # a phrase or a time span inside a message
        return value.render(locale)
    if isinstance(value, int) and not isinstance(value, bool):
        return format_decimal(value, locale=locale, group_separator=False)
    if isinstance(value, float):
        return format_decimal(value, locale=locale, group_separator=False)
    return str(value)


def number(value: float, locale: str | None = None) -> str:
    """A count or a decimal in the locale's digits and decimal sign (no grouping: seeds, ids)."""
    return _format(value, locale or current_locale.get())


def percent(fraction: float, locale: str | None = None) -> str:
    return format_percent(fraction, locale=locale or current_locale.get())


def file_size(n: int, locale: str | None = None) -> str:
    """A file's size in KB (rounded up) below a megabyte, else in MB with one decimal."""
    if n < 1024 * 1024:
        return f"{number(-(-n // 1024), locale)} KB"
    return f"{number(round(n / (1024 * 1024), 1), locale)} MB"


def placeholders(text: str) -> set[str]:
    """The ``{name}`` fields of a catalogue string."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def render(msg_id: str, locale: str | None = None, /, **params: object) -> str:
    """The text of ``msg_id`` for ``locale`` (the current one by default; English fallback)."""
    loc = negotiate(locale) if locale else current_locale.get()
    loc = loc or DEFAULT
    english = catalogue(DEFAULT).get(msg_id)
    if english is None:
        raise KeyError(f"no message {msg_id!r} in the English catalogue")
    trans = _translations(loc)
    if english.pluralizable:
        count = params.get("count")
        number = count if isinstance(count, int) else 0
        text = trans.ngettext(msg_id, str(english.id[1]), number)
    else:
        text = trans.gettext(msg_id)
    if text in (msg_id, english.id[1] if english.pluralizable else None):
        # gettext returns the id itself for a missing or empty translation: fall back.
        return render(msg_id, DEFAULT, **params) if loc != DEFAULT else text
    return text.format(**{k: _format(v, loc) for k, v in params.items()})


def t(msg_id: str, /, **params: object) -> str:
    """``render`` for the current locale."""
    return render(msg_id, None, **params)
