"""Keeps secrets out of logs and messages: every known secret is replaced before text leaves."""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import parse_qsl, unquote, urlencode

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
# Telegram bot tokens look like 123456:AA... even when nobody registered them.
_TELEGRAM_TOKEN = re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{30,}\b")
# Discord interaction tokens: one per request, too many to register each. They sit in webhook
# and callback paths and in gateway events, both of which discord.py logs at DEBUG.
_INTERACTION_TOKEN = re.compile(r"(/(?:webhooks|interactions)/\d+/|['\"]token['\"]: ?['\"])"
                                r"[A-Za-z0-9_.-]+")


def register_secret(value: str | None) -> None:
    """Remember a secret so that ``redact`` removes it from any text."""
    global _pattern
    if not value or len(value) < 4:
        return
    with _lock:
        variants = {value}
        if ":" in value:
            variants.update(part for part in value.split(":") if len(part) >= 8)
        _secrets.update(variants)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def _split_url(url: str) -> tuple[str, str, str, str] | None:
    """(scheme, user info, rest of the location, query); None when ``url`` has no scheme."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    location, _, query = rest.partition("?")
    # The last "@" ends the user info, so an unescaped "@" or "/" in a password stays in it.
    userinfo, _, after = location.rpartition("@")
    return scheme, userinfo, after, query


def url_password(url: str) -> str | None:
    """The password in a URL's user info or its ``password=`` query parameter, decoded."""
    parts = _split_url(url)
    if parts is None:
        return None
    _, userinfo, _, query = parts
    if ":" in userinfo:
        return unquote(userinfo.partition(":")[2])
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "password":
            return value
    return None


def redact_url(url: str) -> str:
    """``url`` with its password masked, wherever it sits (user info or query string)."""
    parts = _split_url(url)
    if parts is None:
        return url
    scheme, userinfo, after, query = parts
    if ":" in userinfo:
        userinfo = userinfo.partition(":")[0] + ":***"
    netloc = f"{userinfo}@{after}" if userinfo else after
    if query:
        pairs = [(k, "***" if k == "password" else v)
                 for k, v in parse_qsl(query, keep_blank_values=True)]
        query = "?" + urlencode(pairs, safe="*")
    return f"{scheme}://{netloc}{query}"


def redact(text: str) -> str:
    """Text with every registered secret (and anything shaped like a bot token) masked."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub("***", text)
    return _INTERACTION_TOKEN.sub(r"\1***", _TELEGRAM_TOKEN.sub("***", text))


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in the final message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        clean = redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks are formatted later; render and mask them now.
            formatter = logging.Formatter()
            clean = clean + "\n" + redact(formatter.formatException(record.exc_info))
            record.exc_info = None
            record.exc_text = None
        if clean != message or record.args:
            record.msg = clean
            record.args = None
        return True


def install_log_redaction() -> None:
    """Attach the filter to every handler of the root logger (call after logging is set up)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
