"""INTERACTION_CREATE payloads (and the messages they point at) as Discord sends them."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tests.fakes.discord_world import (
    APP_ID,
    BOT,
    GUILD,
    JSON,
    MEMBER,
    FakeChannel,
    FakeGuild,
    FakeRole,
    FakeUser,
    dm_channel,
    iso_now,
    snowflake,
)

DEFAULT_ATTACHMENT_LIMIT = 10 * 1024 * 1024  # a server without boosts
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
SUB_COMMAND, SUB_COMMAND_GROUP, STRING, INTEGER, BOOLEAN = 1, 2, 3, 4, 5
USER, CHANNEL, ROLE, NUMBER, ATTACHMENT = 6, 7, 8, 10, 11


@dataclass(frozen=True, slots=True)
class Opt:
    """An option value with an explicit Discord option type (e.g. ``Opt(NUMBER, 1)``)."""

    type: int
    value: Any


def _option(name: str, value: Any, resolved: JSON, guild: FakeGuild | None) -> JSON:
    """One option; users, channels, roles and attachments also go into ``resolved``."""
    if isinstance(value, Opt):
        return {"name": name, "type": value.type, "value": value.value}
    if isinstance(value, bool):
        return {"name": name, "type": BOOLEAN, "value": value}
    if isinstance(value, int):
        return {"name": name, "type": INTEGER, "value": value}
    if isinstance(value, float):
        return {"name": name, "type": NUMBER, "value": value}
    if isinstance(value, str):
        return {"name": name, "type": STRING, "value": value}
    if isinstance(value, FakeUser):
        resolved.setdefault("users", {})[str(value.id)] = value.to_api()
        if guild is not None and value in guild.users:
            member = guild.member_api(value, with_permissions=True)
            del member["user"]
            resolved.setdefault("members", {})[str(value.id)] = member
        return {"name": name, "type": USER, "value": str(value.id)}
    if isinstance(value, FakeChannel):
        channel = {**value.to_api(), "permissions": str(
            guild.permissions_of(BOT.id) if guild else 0)}
        resolved.setdefault("channels", {})[str(value.id)] = channel
        return {"name": name, "type": CHANNEL, "value": str(value.id)}
    if isinstance(value, FakeRole):
        resolved.setdefault("roles", {})[str(value.id)] = value.to_api()
        return {"name": name, "type": ROLE, "value": str(value.id)}
    if isinstance(value, Mapping) and "filename" in value:
        resolved.setdefault("attachments", {})[str(value["id"])] = dict(value)
        return {"name": name, "type": ATTACHMENT, "value": str(value["id"])}
    raise TypeError(f"cannot encode option {name}={value!r}; wrap it in Opt(type, value)")


def _command_data(command: str, options: Mapping[str, Any] | None,
                  guild: FakeGuild | None, *, guild_command: bool) -> JSON:
    """``data`` of a chat-input command; ``"settings set"`` nests into a subcommand (group)."""
    name, *path = command.split()
    resolved: JSON = {}
    leaf = [_option(k, v, resolved, guild) for k, v in (options or {}).items()]
    for depth, part in reversed(list(enumerate(path))):
        kind = SUB_COMMAND if depth == len(path) - 1 else SUB_COMMAND_GROUP
        leaf = [{"name": part, "type": kind, "options": leaf}]
    data: JSON = {"id": str(_command_id(name)), "name": name, "type": 1, "options": leaf}
    if resolved:
        data["resolved"] = resolved
    if guild_command and guild is not None:
        data["guild_id"] = str(guild.id)
    return data


def _command_id(name: str) -> int:
    return 900000000000000000 + sum(map(ord, name))


def interaction(type_: int, data: JSON | None, *, user: FakeUser = MEMBER,
                guild: FakeGuild | None = GUILD, channel: FakeChannel | None = None,
                message: JSON | None = None,
                attachment_size_limit: int = DEFAULT_ATTACHMENT_LIMIT,
                locale: str = "en-US", created_at: float | None = None) -> JSON:
    """The full INTERACTION_CREATE data: a guild interaction, or a DM when ``guild`` is None;
    ``created_at`` (epoch seconds) dates its id, and so its token's 15 minutes."""
    iid = snowflake(created_at)
    secret = secrets.token_urlsafe(48)
    token = base64.urlsafe_b64encode(f"interaction:{iid}:{secret}".encode()).decode().rstrip("=")
    if channel is None:
        channel = guild.channels[0] if guild is not None else dm_channel(user)
    payload: JSON = {
        "id": str(iid), "application_id": str(APP_ID), "type": type_, "token": token,
        "version": 1, "locale": locale, "attachment_size_limit": attachment_size_limit,
        "entitlements": [], "entitlement_sku_ids": [], "channel_id": str(channel.id),
    }
    if data is not None:
        payload["data"] = data
    if message is not None:
        payload["message"] = message
    if guild is not None:
        app_permissions = guild.permissions_of(BOT.id)
        payload.update(
            guild_id=str(guild.id), guild_locale="en-US",
            guild={"id": str(guild.id), "locale": "en-US", "features": []},
            channel={**channel.to_api(), "permissions": str(guild.permissions_of(user.id))},
            member=guild.member_api(user, with_permissions=True),
            app_permissions=str(app_permissions), context=0,
            authorizing_integration_owners={"0": str(guild.id)},
        )
    else:
        payload.update(channel=channel.to_api(recipient=user), user=user.to_api(),
                       app_permissions=str(1 << 11 | 1 << 14 | 1 << 15), context=1,
                       authorizing_integration_owners={"0": "0"})
    return payload


def slash_command(command: str, options: Mapping[str, Any] | None = None, *,
                  guild_command: bool = False, **where: Any) -> JSON:
    """``/command`` (or ``/group sub``) with ``options`` {name: value}; types are inferred.

    str→STRING, int→INTEGER, float→NUMBER, bool→BOOLEAN, FakeUser/FakeChannel/FakeRole,
    an attachment dict (from ``FakeDiscord.add_attachment``) → ATTACHMENT + ``resolved``.
    ``where`` takes ``interaction``'s keywords (user, guild, channel, attachment_size_limit).
    """
    guild = where.get("guild", GUILD)
    data = _command_data(command, options, guild, guild_command=guild_command)
    return interaction(APPLICATION_COMMAND, data, **where)


def autocomplete(command: str, options: Mapping[str, Any] | None = None, *, focused: str,
                 value: Any = "", **where: Any) -> JSON:
    """The autocomplete request sent while the user types ``value`` into option ``focused``."""
    guild = where.get("guild", GUILD)
    opts = {k: v for k, v in (options or {}).items() if k != focused}
    data = _command_data(command, {**opts, focused: value}, guild, guild_command=False)
    leaf = data["options"]
    while leaf and leaf[0]["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP):
        leaf = leaf[0]["options"]
    for opt in leaf:
        if opt["name"] == focused:
            opt["focused"] = True
            if opt["type"] not in (STRING, INTEGER, NUMBER):
                opt["type"] = STRING
    return interaction(AUTOCOMPLETE, data, **where)


def message_command(name: str, target: JSON, **where: Any) -> JSON:
    """A message context-menu command ("Apps → name") used on ``target`` (a message dict)."""
    data = {"id": str(_command_id(name)), "name": name, "type": 3, "target_id": target["id"],
            "resolved": {"messages": {target["id"]: target}}}
    return interaction(APPLICATION_COMMAND, data, **where)


def modal_submit(custom_id: str, values: Mapping[str, str], *,
                 layout: Sequence[JSON] | None = None, **where: Any) -> JSON:
    """A modal submit; with ``layout`` (the modal's components) the reply mirrors its shape."""
    def answer(comp: JSON) -> JSON:
        out: JSON = {"type": comp.get("type", 4), "custom_id": comp["custom_id"]}
        if "id" in comp:
            out["id"] = comp["id"]
        if out["type"] == 4:
            out["value"] = values.get(comp["custom_id"], comp.get("value") or "")
        else:
            out["values"] = list(values.get(comp["custom_id"], []))
        return out

    if layout is None:
        layout = [{"type": 1, "components": [{"type": 4, "custom_id": k}]} for k in values]
    rows: list[JSON] = []
    for row in layout:
        if row.get("type") == 1:
            rows.append({"type": 1, "components": [answer(c) for c in row["components"]]})
        elif row.get("type") == 18:
            rows.append({"type": 18, "id": row.get("id", 0), "component": answer(row["component"])})
    return interaction(MODAL_SUBMIT, {"custom_id": custom_id, "components": rows}, **where)


def component_press(message: JSON, custom_id: str, *, component_type: int = 2,
                    values: Sequence[str] | None = None, **where: Any) -> JSON:
    """A press of button ``custom_id`` (or a select with ``values``) on ``message``."""
    data: JSON = {"custom_id": custom_id, "component_type": component_type}
    if values is not None:
        data["values"] = list(values)
    guild = where.get("guild", GUILD)
    if "channel" not in where and guild is not None:
        where["channel"] = next((c for c in guild.channels
                                 if str(c.id) == str(message["channel_id"])), None)
    return interaction(MESSAGE_COMPONENT, data, message=message, **where)


def user_message(content: str = "", *, attachments: Sequence[JSON] = (),
                 embeds: Sequence[JSON] = (), author: FakeUser = MEMBER,
                 channel: FakeChannel | None = None, guild: FakeGuild | None = GUILD) -> JSON:
    """A message someone posted (e.g. the target of a context-menu command)."""
    if channel is None:
        channel = guild.channels[0] if guild is not None else dm_channel(author)
    msg: JSON = {
        "id": str(snowflake()), "type": 0, "channel_id": str(channel.id),
        "author": author.to_api(), "content": content, "attachments": list(attachments),
        "embeds": list(embeds), "components": [], "mentions": [], "mention_roles": [],
        "mention_everyone": False, "pinned": False, "tts": False, "flags": 0,
        "timestamp": iso_now(), "edited_timestamp": None,
    }
    if channel.guild_id is not None:
        msg["guild_id"] = str(channel.guild_id)
    return msg


def image_embed(url: str, *, width: int = 64, height: int = 48, rich: bool = False,
                proxy_url: str | None = None) -> JSON:
    """An image embed: a pasted link's preview (``type: image``) or a rich embed's ``image``.

    ``proxy_url`` is Discord's proxied copy; by default the link itself (a CDN URL).
    """
    media = {"url": url, "proxy_url": proxy_url or url, "width": width, "height": height,
             "flags": 0}
    if rich:
        return {"type": "rich", "image": media}
    return {"type": "image", "url": url, "thumbnail": media}
