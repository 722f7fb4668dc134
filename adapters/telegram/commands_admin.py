"""Group-admin and owner commands: /chatsettings, /chatset, /chatreset, /grant, /stats."""

from __future__ import annotations

from aiogram import Router

router = Router(name="telegram-admin-commands")
