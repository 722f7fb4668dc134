"""The command menus shown by Telegram per scope (setMyCommands)."""

from __future__ import annotations

from aiogram import Bot


async def register_commands(bot: Bot) -> None:
    """Publish the command lists for private chats, groups and group admins."""
    return None
