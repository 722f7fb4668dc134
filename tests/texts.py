"""Expected texts named by message id, rendered from the English catalogue: the tests' one copy.

Tests never spell out what the bot says; they name the message and its parameters here, so a
reworded catalogue entry changes what every test expects at once, and a test that gets another
message, or the right one with other numbers, still fails. ``tests/test_catalogue_copies.py``
checks that no other test file holds a copy of an English catalogue text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bot.errors import BotError
from bot.i18n import DEFAULT, catalogue, placeholders, render
from tests.fakes.telegram_text import parse_html

WARNING = "⚠️ "  # what both adapters put before an error's text
_UNKNOWN = "\x00"  # stands for a parameter the test cannot know, then cut or matched


def en(msg_id: str, /, **params: object) -> str:
    """The English text of ``msg_id`` with ``params``, exactly as the bot renders it."""
    return render(msg_id, DEFAULT, **params)


def warning(msg_id: str, /, **params: object) -> str:
    """An error as the adapters send it: the warning sign, then its English text."""
    return WARNING + en(msg_id, **params)


def plain(msg_id: str, /, **params: object) -> str:
    """What a Telegram user reads of a text sent as HTML: tags parsed away, entities decoded."""
    return parse_html(en(msg_id, **params))[0]


def field(name: str, value: object) -> str:
    """One line of a result's parameters as shown: ``field("prompt", "a cat")``."""
    return f"{en('field-' + name)}: {value}"


def _with_unknowns(msg_id: str, params: dict[str, object]) -> str:
    english = catalogue(DEFAULT)[msg_id]
    forms = english.string if english.pluralizable else (english.string,)
    names = set().union(*(placeholders(str(form)) for form in forms))
    return en(msg_id, **{name: _UNKNOWN for name in names - params.keys()}, **params)


def head(msg_id: str, /, **params: object) -> str:
    """The text up to the first parameter not given: for when a test cannot know the rest."""
    return _with_unknowns(msg_id, params).split(_UNKNOWN)[0]


def plain_head(msg_id: str, /, **params: object) -> str:
    """``head`` of a text sent as HTML, as the Telegram user reads it."""
    return parse_html(_with_unknowns(msg_id, params))[0].split(_UNKNOWN)[0]


def pattern(msg_id: str, /, **params: object) -> re.Pattern[str]:
    """The text with each parameter not given matching any one-line value; use ``fullmatch``."""
    pieces = _with_unknowns(msg_id, params).split(_UNKNOWN)
    return re.compile(r"[^\n]+?".join(re.escape(piece) for piece in pieces))


@contextmanager
def raises_message(error: type[BotError], msg_id: str, /, **params: object) -> Iterator[None]:
    """``pytest.raises`` for an error that carries the message ``msg_id`` with ``params``."""
    with pytest.raises(error) as caught:
        yield
    msg = caught.value.msg
    assert msg is not None and msg.id == msg_id, (msg, str(caught.value))
    assert {key: msg.params.get(key) for key in params} == params, msg
