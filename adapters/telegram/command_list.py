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

from bot.i18n import DEFAULT, LOCALES, render

log = logging.getLogger(__name__)

GROUP = ["img2img", "help", "balance", "settings", "cancel", "styles", "providers"]
PRIVATE = ["start", *GROUP, "set", "reset", "forget", "buy", "paysupport", "terms"]
ADMINS = [*GROUP, "chatsettings", "chatset", "chatreset"]
# Owners' /grant, /refund and /stats stay out of the menus: /help lists them for owners.
MENUS: list[tuple[BotCommandScopeUnion, list[str]]] = [
    (BotCommandScopeAllPrivateChats(), PRIVATE), (BotCommandScopeAllGroupChats(), GROUP),
    (BotCommandScopeAllChatAdministrators(), ADMINS)]


def language_codes() -> list[tuple[str, str | None]]:
    """(locale, Telegram's language_code): English is the menu for every language not shipped;
    Telegram takes two-letter codes only, so pt_BR's menu is the one for "pt"."""
    return [(DEFAULT, None), *((loc, loc.split("_")[0]) for loc in LOCALES if loc != DEFAULT)]


async def register_commands(bot: Bot) -> None:
    """Publish the command lists per scope and language; a failure is logged, never fatal
    (the commands still work)."""
    for locale, code in language_codes():
        for scope, names in MENUS:
            try:
                await bot.set_my_commands(
                    [BotCommand(command=name, description=render(f"menu-{name}", locale))
                     for name in names], scope=scope, language_code=code)
            except TelegramAPIError as exc:
                log.warning("setMyCommands for %s (%s) failed: %s", scope.type, code, exc)
