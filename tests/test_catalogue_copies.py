"""No test holds its own copy of an English catalogue text: tests name texts by message id.

A copy is a string literal (docstrings aside) containing a fixed piece of an English message of
20 or more characters: the whole text of a message without placeholders, or any stretch
between its placeholders (and line breaks), HTML tags removed as a Telegram user reads them,
a final full stop left off.
Twenty characters make a phrase no prompt, provider answer or log line shares by chance, and
shorter pieces are single words. ``tests/texts.py`` renders every expected text from the
catalogue and is the one file allowed to hold English.
"""

from __future__ import annotations

import ast
import re
import string
from functools import cache
from pathlib import Path

from bot.i18n import DEFAULT, catalogue
from tests.texts import en, head, warning

TESTS = Path(__file__).resolve().parent
ONE_PLACE = TESTS / "texts.py"
SHORTEST = 20
_TAG = re.compile(r"</?[a-z][a-z-]*>")


@cache
def fragments() -> dict[str, str]:
    """Each fixed piece of SHORTEST+ characters of the English messages, with its message id."""
    found: dict[str, str] = {}
    for message in catalogue(DEFAULT):
        if not message.id:
            continue
        key = str(message.id[0] if message.pluralizable else message.id)
        forms = message.string if message.pluralizable else (message.string,)
        for form in forms:
            for literal, _, _, _ in string.Formatter().parse(str(form)):
                for line in _TAG.sub("", literal).splitlines():
                    piece = line.strip().removesuffix(".")  # a copy may leave the stop off
                    if len(piece) >= SHORTEST:
                        found.setdefault(piece, key)
    return found


def _docstrings(tree: ast.AST) -> set[int]:
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(
        n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef))]
    return {id(body[0].value) for n in nodes if (body := getattr(n, "body", None))
            and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)}


def copies(source: str) -> list[tuple[int, str, str]]:
    """(line, message id, piece) for each string literal in ``source`` that copies a text."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in skip):
            found += [(node.lineno, key, piece) for piece, key in fragments().items()
                      if piece in node.value]
    return sorted(found)


def test_no_test_file_copies_an_english_catalogue_text() -> None:
    found = [f"{path.relative_to(TESTS.parent)}:{line}: {key}: {piece!r}"
             for path in sorted(TESTS.rglob("*.py")) if path != ONE_PLACE
             for line, key, piece in copies(path.read_text(encoding="utf-8"))]
    assert found == [], "name these texts by message id (tests/texts.py):\n" + "\n".join(found)


def test_the_check_finds_a_copy_and_passes_a_message_id() -> None:
    unavailable = en("error-storage-unavailable")
    thanks = head("dc-thanks", count=100)  # a piece after a placeholder counts too
    source = "\n".join([
        f'"""{unavailable} A docstring may say what a test is about."""',
        f"WANTED = {warning('error-storage-unavailable')!r}",
        f"BALANCE = f{thanks + '{110}.'!r}",
        'STATUS = en("error-storage-unavailable")',
        'PROMPT = "a red dragon over the misty hills"'])
    assert copies(source) == [(2, "error-storage-unavailable", unavailable.removesuffix(".")),
                              (3, "dc-thanks", thanks.partition("100")[2].strip())]
    assert len(fragments()) > 200  # the catalogue was read
