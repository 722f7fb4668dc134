"""A result's caption within a platform's length limit: the prompt is trimmed, never the figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.events import Done
from bot.presenter import result_fields

NOTICE = "ℹ️ "
# Notices go first when the figures leave less than this much room for the prompt.
PROMPT_ROOM = 200


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units (how Telegram counts a caption)."""
    return len(text.encode("utf-16-le")) // 2


def trim(text: str, budget: int, measure: Callable[[str], int] = len) -> str:
    """``text`` cut to ``budget`` (as ``measure`` counts), an ellipsis marking the cut."""
    if measure(text) <= budget:
        return text
    out = []
    used = 1  # the ellipsis
    for char in text:
        used += measure(char)
        if used > budget:
            break
        out.append(char)
    return "".join(out).rstrip() + "…"


@dataclass(frozen=True, slots=True)
class Caption:
    """What a result's caption says: fields shown as ``name: value``, then notices."""

    fields: tuple[tuple[str, str], ...]  # the prompt first, trimmed to fit
    notices: tuple[str, ...]


def fit_caption(done: Done, prompt: str, notices: tuple[str, ...], limit: int,
                measure: Callable[[str], int] = len) -> Caption:
    """The result's fields and notices within ``limit`` visible characters."""
    (label, _), *rest = result_fields(done, prompt)
    visible = sum(measure(f"{name}: {value}") + 1 for name, value in rest)
    notice_units = sum(measure(f"{NOTICE}{n}") + 1 for n in notices)
    if visible + notice_units > limit - PROMPT_ROOM:
        notices, notice_units = (), 0
    budget = limit - visible - notice_units - measure(f"{label}: ")
    return Caption(((label, trim(prompt, budget, measure)), *rest), notices)
