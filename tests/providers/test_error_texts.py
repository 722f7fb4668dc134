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
from bot.errors import BotError, JobFailed, ProviderTimeout
from bot.events import Failed
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


def provider_error_texts() -> list[tuple[str, str]]:
    """(where, text) of every literal message given to an error in ``bot/providers``."""
    found: list[tuple[str, str]] = []
    for path in sorted((ROOT / "providers").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            literal = isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            if literal and isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                text = _text(node.value)
                if text and any(name.isupper() for name in names) and text.endswith("."):
                    found.append((f"{path.name}:{node.lineno}", text))  # message constants
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            text = _text(node.args[0]) if name in ERROR_NAMES else None
            if text is not None:
                found.append((f"{path.name}:{node.lineno}", text))
    return found


def test_the_scan_sees_the_backends_messages() -> None:
    texts = [text for _, text in provider_error_texts()]
    assert len(texts) > 30
    assert any("ran out of GPU memory" in text for text in texts)


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
    words = "The image server ran out of GPU memory; try a smaller size."  # the backend's
    error = JobFailed(words)
    refunded = Failed(error=error, refunded=True, balance=9)
    assert failure_text(refunded) == en("failure-refunded-balance", message=words, balance=9)
    assert status_line(refunded) == f"⚠️ {failure_text(refunded)}"
    free = Failed(error=ProviderTimeout(), refunded=False, balance=None)
    assert failure_text(free) == en("error-provider-timeout")
