"""Logging set-up: one line per record, as text or JSON, with secrets masked in both."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from bot.config import LoggingConfig
from bot.redact import install_log_redaction

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = ("asctime", "levelname", "name", "message")


def make_formatter(kind: str) -> logging.Formatter:
    """``text``: one readable line; ``json``: one object per line, ``extra`` fields as keys."""
    if kind == "json":
        return JsonFormatter(list(JSON_FIELDS), rename_fields={
            "asctime": "time", "levelname": "level", "name": "logger"})
    return logging.Formatter(TEXT_FORMAT)


def setup_logging(settings: LoggingConfig) -> None:
    """Log to stderr in the configured format, secrets masked."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(settings.format))
    logging.basicConfig(level=settings.level.upper(), handlers=[handler], force=True)
    install_log_redaction()
