"""Keeps secrets out of logs and messages: every known secret is replaced before text leaves."""

from __future__ import annotations

import logging
import re
import threading

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
# Telegram bot tokens look like 123456:AA... even when nobody registered them.
_TELEGRAM_TOKEN = re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{30,}\b")


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


def redact(text: str) -> str:
    """Text with every registered secret (and anything shaped like a bot token) masked."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub("***", text)
    return _TELEGRAM_TOKEN.sub("***", text)


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
