"""Formatted text as the Bot API reads it: parse_mode parsing, trimming and length limits.

The rules and error texts follow TDLib (which the Bot API server runs): HTML accepts only the
documented tags, `<` must start one, and unknown `&...;` stays literal; MarkdownV2 demands a
backslash before every reserved character. Lengths count code points after parsing, which is
what the server checks (entity offsets, by contrast, are in UTF-16 code units).
"""

from __future__ import annotations

import re
from typing import Any

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024

_HTML_TYPES = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
    "ins": "underline", "s": "strikethrough", "strike": "strikethrough",
    "del": "strikethrough", "tg-spoiler": "spoiler", "span": "spoiler", "a": "text_link",
    "code": "code", "pre": "pre", "blockquote": "blockquote", "tg-emoji": "custom_emoji",
}
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")
_ATTR = re.compile(r"""\s*([a-zA-Z_-]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+))?""")
_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MDV2_MARKS = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough",
               "||": "spoiler", "`": "code", "```": "pre"}
_MD_MARKS = {"*": "bold", "_": "italic", "`": "code", "```": "pre"}


class EntityError(ValueError):
    """The text cannot be parsed; str(error) is the Bot API description."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"Bad Request: can't parse entities: {detail}")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(src: str, index: int) -> int:
    return len(src[:index].encode("utf-8"))


class _Out:
    """Accumulates plain text and entities with UTF-16 offsets."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0
        self.entities: list[dict[str, Any]] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.pos += utf16_len(text)

    def entity(self, kind: str, start: int, **extra: Any) -> None:
        if self.pos > start:
            self.entities.append({"type": kind, "offset": start, "length": self.pos - start,
                                  **extra})

    def result(self) -> tuple[str, list[dict[str, Any]]]:
        return "".join(self.parts), sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))


def _unescape(value: str) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name.startswith("#x"):
            return chr(int(name[2:], 16))
        if name.startswith("#"):
            return chr(int(name[1:]))
        return _NAMED[name]

    return _ENTITY.sub(repl, value)


def parse_html(src: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's HTML subset -> (plain text, entities)."""
    out = _Out()
    stack: list[tuple[str, dict[str, str], int]] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == "&":
            m = _ENTITY.match(src, i)
            out.add(_unescape(m.group(0)) if m else "&")
            i = m.end() if m else i + 1
            continue
        if c != "<":
            j = i
            while j < n and src[j] not in "<&":
                j += 1
            out.add(src[i:j])
            i = j
            continue
        begin = i
        if i + 1 < n and src[i + 1] == "/":
            if not stack:
                raise EntityError(f"Unexpected end tag at byte offset {_byte_offset(src, begin)}")
            close = src.find(">", i)
            if close < 0:
                raise EntityError(f"Unclosed end tag at byte offset {_byte_offset(src, begin)}")
            name = src[i + 2:close].strip().lower()
            tag, attrs, start = stack[-1]
            if name and name != tag:
                raise EntityError(
                    f"Unmatched end tag at byte offset {_byte_offset(src, begin)}, "
                    f'expected "</{tag}>", found "</{name}>"')
            stack.pop()
            _close_html(out, tag, attrs, start, stack)
            i = close + 1
            continue
        j = i + 1
        while j < n and not src[j].isspace() and src[j] not in "/>":
            j += 1
        if j >= n:
            raise EntityError(f"Unclosed start tag at byte offset {_byte_offset(src, begin)}")
        tag = src[i + 1:j].lower()
        if tag not in _HTML_TYPES:
            raise EntityError(
                f'Unsupported start tag "{tag}" at byte offset {_byte_offset(src, begin)}')
        close = src.find(">", j)
        if close < 0:
            raise EntityError(f"Unclosed start tag at byte offset {_byte_offset(src, begin)}")
        attrs = {m.group(1).lower(): _unescape((m.group(2) or "").strip("\"'"))
                 for m in _ATTR.finditer(src[j:close].rstrip("/"))}
        if tag == "span" and attrs.get("class") != "tg-spoiler":
            raise EntityError('Tag "span" must have class "tg-spoiler"')
        stack.append((tag, attrs, out.pos))
        i = close + 1
    if stack:
        raise EntityError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return out.result()


def _close_html(out: _Out, tag: str, attrs: dict[str, str], start: int,
                stack: list[tuple[str, dict[str, str], int]]) -> None:
    kind = _HTML_TYPES[tag]
    if tag == "a":
        out.entity("text_link", start, url=attrs.get("href", ""))
    elif tag == "code" and stack and stack[-1][0] == "pre":
        if "class" in attrs:  # <pre><code class="language-x"> is one pre entity
            stack[-1][1]["language"] = attrs["class"].removeprefix("language-")
    elif tag == "pre" and "language" in attrs:
        out.entity("pre", start, language=attrs["language"])
    elif tag == "blockquote" and "expandable" in attrs:
        out.entity("expandable_blockquote", start)
    elif tag == "tg-emoji":
        out.entity(kind, start, custom_emoji_id=attrs.get("emoji-id", ""))
    else:
        out.entity(kind, start)


def _mark_at(src: str, i: int, marks: dict[str, str]) -> str:
    for mark in sorted(marks, key=len, reverse=True):
        if src.startswith(mark, i):
            return mark
    return ""


def parse_markdown(src: str, v2: bool) -> tuple[str, list[dict[str, Any]]]:
    """MarkdownV2 (v2=True) or legacy Markdown -> (plain text, entities)."""
    marks = _MDV2_MARKS if v2 else _MD_MARKS
    out = _Out()
    stack: list[tuple[str, int, int, str]] = []  # (mark, utf16 start, source index, language)
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        in_code = bool(stack) and stack[-1][0] in ("`", "```")
        if c == "\\" and i + 1 < n and (v2 or src[i + 1] in "_*`["):
            out.add(src[i + 1])
            i += 2
            continue
        mark = _mark_at(src, i, marks)
        if in_code and mark != stack[-1][0]:
            out.add(c)
            i += 1
        elif mark and stack and stack[-1][0] == mark:
            _, start, _, language = stack.pop()
            out.entity(marks[mark], start, **({"language": language} if language else {}))
            i += len(mark)
        elif mark and (v2 or not stack):
            language = ""
            if mark == "```":  # an opening fence may name the language on its first line
                line = re.match(r"([\w+#-]*)\n", src[i + 3:])
                if line:
                    language = line.group(1)
                    i += len(line.group(0))
            stack.append((mark, out.pos, i, language))
            i += len(mark)
        elif c == "[" and not in_code:
            i = _md_link(src, i, out, v2)
        elif v2 and c in _MDV2_RESERVED:
            raise EntityError(
                f"Character '{c}' is reserved and must be escaped with the preceding '\\'")
        else:
            out.add(c)
            i += 1
    if stack:
        mark, _, index, _ = stack[-1]
        where = f"at byte offset {_byte_offset(src, index)}"
        if v2:
            raise EntityError(f"Can't find end of {marks[mark].title()} entity {where}")
        raise EntityError(f"Can't find end of the entity starting {where}")
    return out.result()


def _md_link(src: str, i: int, out: _Out, v2: bool) -> int:
    m = re.compile(r"\[((?:\\.|[^\]\\])*)\]\(((?:\\.|[^)\\])*)\)").match(src, i)
    if not m:
        if v2:
            raise EntityError("Character '[' is reserved and must be escaped with the "
                              "preceding '\\'")
        out.add("[")
        return i + 1
    start = out.pos
    out.add(re.sub(r"\\(.)", r"\1", m.group(1)))
    out.entity("text_link", start, url=re.sub(r"\\(.)", r"\1", m.group(2)))
    return m.end()


def _trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Strip outer whitespace as the server does, moving and clipping entities with it."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    size = utf16_len(stripped)
    kept = []
    for e in entities:
        start = max(e["offset"] - lead, 0)
        end = min(e["offset"] + e["length"] - lead, size)
        if end > start:
            kept.append({**e, "offset": start, "length": end - start})
    return stripped, kept


def format_text(raw: str, parse_mode: str | None, entities: list[dict[str, Any]] | None,
                ) -> tuple[str, list[dict[str, Any]]]:
    """What the user sees for ``raw`` sent with ``parse_mode`` (or explicit ``entities``)."""
    mode = (parse_mode or "").lower()
    if entities is not None or not mode:
        text, ents = raw, list(entities or [])
    elif mode == "html":
        text, ents = parse_html(raw)
    elif mode in ("markdownv2", "markdown"):
        text, ents = parse_markdown(raw, v2=mode == "markdownv2")
    else:
        raise ValueError("Bad Request: unsupported parse_mode")
    return _trim(text, ents)
