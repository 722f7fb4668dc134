"""Command sync only when the command set changed: Discord limits daily command creation.

The hash of what ``tree.sync()`` would send is kept in ``discord-commands.json`` beside the
SQLite database, one entry per application and scope. Delete the file to force a sync. With an
in-memory database there is no file: the registered commands are fetched and compared instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, cast

import discord
from discord import app_commands

from bot.config import Config
from bot.errors import ConfigError

log = logging.getLogger(__name__)
STATE_FILE = "discord-commands.json"


def command_payload(tree: app_commands.CommandTree[Any],
                    guild: discord.abc.Snowflake | None) -> list[dict[str, Any]]:
    """What ``tree.sync(guild=guild)`` would send, in a stable order."""
    payload = [command.to_dict(tree) for command in tree.get_commands(guild=guild)]
    return sorted(payload, key=lambda c: (c.get("type", 1), c["name"]))


def state_path(config: Config) -> Path | None:
    """Where the hashes live: beside the database file (None for an in-memory database)."""
    try:
        db = config.storage.sqlite_path
    except ConfigError:
        return None
    if not db or db == ":memory:" or db.startswith("file::memory:"):
        return None
    return Path(db).parent / STATE_FILE


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _signature(command: dict[str, Any]) -> tuple[Any, ...]:
    options = tuple(sorted(o["name"] for o in command.get("options") or []))
    return command.get("type", 1), command["name"], command.get("description", ""), options


async def sync_if_changed(client: discord.Client, tree: app_commands.CommandTree[Any],
                          config: Config) -> bool:
    """Sync the tree when its commands differ from the last sync; True if it synced."""
    settings = config.discord
    guild = discord.Object(settings.command_guild) if settings and settings.command_guild \
        else None
    if guild is not None:
        tree.copy_global_to(guild=guild)
    payload = command_payload(tree, guild)
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    key = f"{client.application_id}:{guild.id if guild else 'global'}"
    path = state_path(config)
    state = _read(path) if path else {}
    if path is None:  # an in-memory database keeps no file: Discord's own list is compared
        remote = [cast(dict[str, Any], c.to_dict()) for c in await tree.fetch_commands(guild=guild)]
        if sorted(map(_signature, remote)) == sorted(map(_signature, payload)):
            log.info("discord commands unchanged; not syncing")
            return False
    elif state.get(key) == digest:
        log.info("discord commands unchanged since the last sync; not syncing")
        return False
    await tree.sync(guild=guild)
    log.info("synced %d discord commands (%s)", len(payload), key)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(state | {key: digest}, indent=1, sort_keys=True),
                        encoding="utf-8")
    return True
