"""The caption grammar: ``/img2img[@bot] <prompt> [--option value]...``.

Options may come anywhere; the words that are not options form the prompt. A value may be
quoted ("..." or “...”); ``--no`` without quotes takes every word up to the next option.
Apostrophes in the prompt are plain text (a prompt like ``a dog's face`` must work).
Phones turn ``--`` into an em or en dash, so ``—steps`` means ``--steps``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.errors import OptionError
from bot.i18n import Msg
from bot.options import FLAGS, Overrides, clean_text, option_names, quote

COMMAND = re.compile(r"^\s*/(?P<name>[A-Za-z0-9_]+)(?:@(?P<bot>[A-Za-z0-9_]+))?(?:\s+|$)")
OPENING_QUOTES = {'"': '"', "“": "”", "„": "“", "«": "»"}
GREEDY = frozenset({"negative_prompt"})


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    prompt: str
    overrides: Overrides


def strip_command(text: str) -> tuple[str | None, str]:
    """Split ``/cmd@bot rest`` into ("cmd", rest); text without a command gives (None, text)."""
    match = COMMAND.match(text)
    if not match:
        return None, text
    return match["name"].lower(), text[match.end():]


def _flag(word: str) -> str | None:
    """The canonical flag for a word like --steps, —steps or --steps=30 (None if not a flag)."""
    head = word.split("=", 1)[0]
    if head.startswith(("—", "–")):
        head = "--" + head[1:]
    if not head.startswith("-") or len(head) < 2 or head[1:2].isdigit():
        return None
    return head.lower()


def _take_quoted(words: list[str], start: int) -> tuple[str, int]:
    """A value starting with an opening quote, possibly over several words."""
    first = words[start]
    closing = OPENING_QUOTES[first[0]]
    collected = [first[1:]]
    index = start
    while not collected[-1].endswith(closing) or (index == start and len(first) == 1):
        index += 1
        if index >= len(words):
            raise OptionError(msg=Msg("error-quote-unclosed"))
        collected.append(words[index])
    text = " ".join(collected)
    return text[: -len(closing)], index + 1


def parse_caption(text: str) -> ParsedRequest:
    """Parse a caption or command text; raises ``OptionError`` with what is allowed."""
    _, rest = strip_command(clean_text(text))
    words = rest.split()
    prompt_words: list[str] = []
    values: dict[str, object] = {}
    index = 0
    while index < len(words):
        word = words[index]
        flag = _flag(word)
        if flag is None:
            prompt_words.append(word)
            index += 1
            continue
        spec = FLAGS.get(flag)
        if spec is None:
            raise OptionError(msg=Msg("error-unknown-option", {"option": quote(flag),
                                                               "allowed": option_names()}))
        if spec.field in values:
            raise OptionError(msg=Msg("error-option-twice", {"option": spec.flags[0]}))
        if "=" in word:
            raw, index = word.split("=", 1)[1], index + 1
            if raw[:1] in OPENING_QUOTES:
                words[index - 1] = raw
                raw, index = _take_quoted(words, index - 1)
        elif index + 1 >= len(words) or (_flag(words[index + 1]) is not None
                                         and not _is_number(words[index + 1])):
            raise OptionError(msg=Msg("error-option-needs-value",
                                      {"option": spec.flags[0], "help": spec.help_msg}))
        elif words[index + 1][:1] in OPENING_QUOTES:
            raw, index = _take_quoted(words, index + 1)
        elif spec.field in GREEDY:
            end = index + 1
            while end < len(words) and _flag(words[end]) is None:
                end += 1
            raw, index = " ".join(words[index + 1:end]), end
        else:
            raw, index = words[index + 1], index + 2
        values[spec.field] = spec.parse(raw)
    prompt = " ".join(prompt_words).strip()
    return ParsedRequest(prompt=prompt, overrides=Overrides(**values))  # type: ignore[arg-type]


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True
