"""Every error text a backend can raise is one sentence, and none of them speaks of refunds.

The refund notice is the adapters' rendering of ``Failed(refunded=True)`` (``failure_text``),
written once: a backend cannot know whether the job was charged at all.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import bot.errors
from bot.errors import BotError, JobFailed, ProviderError, ProviderTimeout
from bot.events import Failed
from bot.i18n import DEFAULT, Msg, catalogue
from bot.presenter import failure_text, status_line
from tests.texts import en

ROOT = Path(bot.errors.__file__).parent
ERROR_NAMES = {name for name, value in vars(bot.errors).items()
               if isinstance(value, type) and issubclass(value, BotError)} | {"failed_job"}
# A full stop, question or exclamation mark followed by more words: a second sentence.
SECOND_SENTENCE = re.compile(r"[.!?]\s+\S")


def _text(node: ast.expr) -> str | None:
    """The literal text of a string argument; an f-string's fields read as ``X``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "X"
                       for part in node.values)
    return None


def _message_id(node: ast.expr) -> str | None:
    """The id of a ``Msg("error-...", ...)`` call, the way providers name what they say."""
    if (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Msg" and node.args
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        return node.args[0].value
    return None


def provider_error_texts() -> list[tuple[str, str]]:
    """(where, English text) of every message a backend or a result check can raise."""
    found: list[tuple[str, str]] = []
    paths = [*sorted((ROOT / "providers").glob("*.py")), ROOT / "imaging.py"]
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            msg_id = _message_id(node) if isinstance(node, ast.expr) else None
            if msg_id is not None:
                found.append((f"{path.name}:{node.lineno}:{msg_id}",
                              str(catalogue(DEFAULT)[msg_id].string)))  # as worded
            elif isinstance(node, ast.Call) and node.args and (name := getattr(
                    node.func, "id", getattr(node.func, "attr", ""))) in ERROR_NAMES:
                plain = _text(node.args[0])  # an operator's sentence, where one is left
                if plain is not None:
                    found.append((f"{path.name}:{node.lineno} {name}", plain))
    return found


def test_the_scan_sees_the_backends_messages() -> None:
    where = [place for place, _ in provider_error_texts()]
    assert len(where) > 30
    assert any(place.endswith(":error-out-of-memory") for place in where)


def test_backends_word_what_users_read_by_message_id() -> None:
    """A plain sentence would reach a Russian reader as the generic failure, an English one as
    English: only the pool's health summary, read by the operator, is one."""
    failures = {name for name, value in vars(bot.errors).items()
                if isinstance(value, type) and issubclass(value, ProviderError)}
    plain = [text for where, text in provider_error_texts()
             if where.partition(" ")[2] in failures]
    assert [text.split(" (")[0] for text in plain] == ["no pool member is healthy"]


@pytest.mark.parametrize(("where", "text"), provider_error_texts())
def test_each_provider_error_text_is_one_sentence(where: str, text: str) -> None:
    assert not SECOND_SENTENCE.search(text.rstrip()), where
    assert "refund" not in text.lower(), where


@pytest.mark.parametrize("cls", sorted(
    (value for value in vars(bot.errors).values()
     if isinstance(value, type) and issubclass(value, BotError)), key=lambda c: c.__name__))
def test_each_default_message_is_one_sentence(cls: type[BotError]) -> None:
    message = cls.default_message
    assert message.endswith(".") and not SECOND_SENTENCE.search(message), cls.__name__
    assert "refund" not in message.lower(), cls.__name__


def test_the_refund_notice_is_written_once_and_only_when_refunded() -> None:
    error = JobFailed(msg=Msg("error-out-of-memory"))
    refunded = Failed(error=error, refunded=True, balance=9)
    assert failure_text(refunded) == en("failure-refunded-balance",
                                        message=en("error-out-of-memory"), balance=9)
    assert status_line(refunded) == f"⚠️ {failure_text(refunded)}"
    free = Failed(error=ProviderTimeout(), refunded=False, balance=None)
    assert failure_text(free) == en("error-provider-timeout")
