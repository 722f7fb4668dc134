"""Command sync only when the command set changed: Discord limits daily command creation.

At every start the commands Discord has registered (``tree.fetch_commands``) are compared with
what ``tree.sync()`` would send, both read through discord.py's own ``AppCommand`` model (which
evens out what Discord leaves out of its echo, such as ``required: false``). Any difference in
what Discord keeps (a description, a translation, a choice, a permission) syncs; the bot keeps
no state of its own about it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import discord
from discord import app_commands

log = logging.getLogger(__name__)
IDS = ("id", "application_id", "guild_id")  # Discord's own
# Discord fills these in where a command leaves them out: compared only where the bot sets them.
DEFAULTED = ("contexts", "integration_types")
Key = tuple[discord.AppCommandType, str]


def shape(command: app_commands.AppCommand, *, like: app_commands.AppCommand) -> str:
    """What Discord keeps of ``command`` as comparable text, the keys Discord fills in by
    itself only where ``like`` (the bot's version of it) sets them."""
    data: dict[str, Any] = dict(command.to_dict())
    skip = IDS + tuple(key for key in DEFAULTED if like.to_dict().get(key) is None)
    kept = {key: value for key, value in data.items() if key not in skip}
    permissions = command.default_member_permissions
    kept |= {"nsfw": command.nsfw, "permissions": permissions and permissions.value}
    return json.dumps(kept, sort_keys=True)


async def local_commands(tree: app_commands.CommandTree[Any], guild: discord.abc.Snowflake | None
                         ) -> dict[Key, app_commands.AppCommand]:
    """What ``tree.sync(guild=guild)`` would send (translated as it does), read as Discord's
    answer would be."""
    found = {}
    for command in tree.get_commands(guild=guild):
        payload = await command.get_translated_payload(tree, tree.translator) \
            if tree.translator else command.to_dict(tree)
        data = {"description": "", **payload, "id": 0, "application_id": 0}
        # The connection state serves only lookups (``.guild``) a comparison never makes.
        mine = app_commands.AppCommand(data=data, state=None)  # type: ignore[arg-type]
        found[mine.type, mine.name] = mine
    return found


async def sync_if_changed(tree: app_commands.CommandTree[Any], guild_id: int | None) -> bool:
    """Sync the tree (to ``guild_id``, else globally) when Discord's commands differ from it;
    True if it synced."""
    guild = discord.Object(guild_id) if guild_id else None
    if guild is not None:
        tree.copy_global_to(guild=guild)
    local = await local_commands(tree, guild)
    remote = {(c.type, c.name): c for c in await tree.fetch_commands(guild=guild)}
    if local.keys() == remote.keys() and all(
            shape(remote[key], like=mine) == shape(mine, like=mine) for key, mine in local.items()):
        log.info("discord commands unchanged; not syncing")
        return False
    await tree.sync(guild=guild)
    log.info("synced %d discord commands (%s)", len(local), guild_id or "global")
    return True
