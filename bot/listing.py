"""Lists as chat text: bullets that fit one message, and the names matching what a user typed."""

from __future__ import annotations

from collections.abc import Iterable

from bot.i18n import t


def bullet_list(lines: list[str], limit: int) -> str:
    """Lines as a bulleted list within ``limit`` characters, with a note when some were left out."""
    out: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        item = f"• {line}"
        if used + len(item) + 1 > limit:
            out.append(t("list-more", count=len(lines) - index))
            break
        out.append(item)
        used += len(item) + 1
    return "\n".join(out)


def matching(names: Iterable[str], typed: str, *, ranked: bool = True,
             longest: int = 100) -> list[str]:
    """The names containing ``typed`` (any case, at most ``longest`` long): with ``ranked``,
    those starting with it first, then the rest, each group by name; else in their own order."""
    typed = typed.strip().lower()
    hits = [n for n in names if typed in n.lower() and 0 < len(n) <= longest]
    if ranked:
        hits.sort(key=lambda n: (not n.lower().startswith(typed), n.lower()))
    return hits
