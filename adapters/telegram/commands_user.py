"""User commands: /start, /help, /balance, /settings, /styles, /providers, /cancel, /forget."""

from __future__ import annotations

from aiogram import Router

router = Router(name="telegram-user-commands")
