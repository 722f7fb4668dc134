"""The command menus Telegram shows, per scope: private chats, groups, group admins."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeUnion,
)

log = logging.getLogger(__name__)

IMG2IMG = ("img2img", "Caption a photo: /img2img PROMPT [options]")
GROUP = [
    IMG2IMG,
    ("help", "How to ask, options, styles, providers"),
    ("balance", "Your credits and recent movements"),
    ("settings", "Your personal defaults"),
    ("cancel", "Cancel your latest request"),
    ("styles", "Style presets"),
    ("providers", "Image backends"),
]
PRIVATE = [
    ("start", "Welcome, balance and an example"),
    *GROUP,
    ("set", "Set a default: /set KEY VALUE"),
    ("reset", "Back to the defaults: /reset [KEY]"),
    ("forget", "Erase your prompts and settings"),
    ("buy", "Buy credits with Telegram Stars"),
    ("paysupport", "Help with a purchase"),
    ("terms", "Terms of sale"),
]
ADMINS = [
    *GROUP,
    ("chatsettings", "This chat's settings (admins)"),
    ("chatset", "Change one: /chatset KEY VALUE (admins)"),
    ("chatreset", "Reset this chat's settings (admins)"),
]
# Owners' /grant, /refund and /stats stay out of the menus: /help lists them for owners.


def menus() -> list[tuple[BotCommandScopeUnion, list[tuple[str, str]]]]:
    return [(BotCommandScopeAllPrivateChats(), PRIVATE),
            (BotCommandScopeAllGroupChats(), GROUP),
            (BotCommandScopeAllChatAdministrators(), ADMINS)]


async def register_commands(bot: Bot) -> None:
    """Publish the command lists; a failure is logged, never fatal (the commands still work)."""
    for scope, commands in menus():
        try:
            await bot.set_my_commands(
                [BotCommand(command=name, description=text) for name, text in commands],
                scope=scope)
        except TelegramAPIError as exc:
            log.warning("setMyCommands for %s failed: %s", scope.type, exc)
