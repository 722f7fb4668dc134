"""The fake Discord's cast: users, roles, channels and a guild, with their API JSON."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import discord

JSON = dict[str, Any]

DISCORD_EPOCH_MS = 1420070400000
_counter = itertools.count(1)


def snowflake(at: float | None = None) -> int:
    """A fresh, increasing Discord snowflake (timestamp-based, like the real ones), of now or
    of the moment ``at`` (epoch seconds)."""
    ms = int((time.time() if at is None else at) * 1000) - DISCORD_EPOCH_MS
    return (ms << 22) | (next(_counter) & 0x3FFFFF)


def snowflake_time(value: int) -> float:
    """The moment (epoch seconds) a snowflake was made."""
    return ((value >> 22) + DISCORD_EPOCH_MS) / 1000


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


# Permission bits (https://discord.com/developers/docs/topics/permissions).
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
MANAGE_GUILD = 1 << 5  # "Manage Server"
MANAGE_MESSAGES = 1 << 13
ALL_PERMISSIONS = discord.Permissions.all().value
EVERYONE_PERMISSIONS = (
    (1 << 0) | (1 << 6) | (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16)
    | (1 << 18) | (1 << 20) | (1 << 21) | (1 << 26) | (1 << 31) | (1 << 38)
)
MODERATOR_PERMISSIONS = MANAGE_GUILD | MANAGE_MESSAGES | MANAGE_CHANNELS

TEXT_CHANNEL = 0
DM_CHANNEL = 1


@dataclass(frozen=True, slots=True)
class FakeUser:
    """A Discord user; ``to_api`` is the user object."""

    id: int
    name: str
    bot: bool = False

    def to_api(self) -> JSON:
        return {"id": str(self.id), "username": self.name, "discriminator": "0",
                "global_name": None if self.bot else self.name.title(), "avatar": None,
                "bot": self.bot, "public_flags": 0, "flags": 0, "banner": None,
                "accent_color": None, "avatar_decoration_data": None}


@dataclass(frozen=True, slots=True)
class FakeRole:
    """A guild role; the @everyone role has the guild's id."""

    id: int
    name: str
    permissions: int
    position: int = 0

    def to_api(self) -> JSON:
        return {"id": str(self.id), "name": self.name, "permissions": str(self.permissions),
                "position": self.position, "color": 0, "colors": {"primary_color": 0},
                "hoist": False, "managed": False, "mentionable": False, "icon": None,
                "unicode_emoji": None, "flags": 0}


@dataclass(frozen=True, slots=True)
class FakeChannel:
    """A text channel in a guild (``guild_id`` set) or a DM channel (``type`` 1)."""

    id: int
    name: str
    guild_id: int | None
    type: int = TEXT_CHANNEL
    nsfw: bool = False
    position: int = 0

    def to_api(self, recipient: FakeUser | None = None) -> JSON:
        if self.guild_id is None:
            users = [recipient.to_api()] if recipient is not None else []
            return {"id": str(self.id), "type": DM_CHANNEL, "last_message_id": None,
                    "recipients": users, "flags": 0}
        return {"id": str(self.id), "type": self.type, "name": self.name,
                "guild_id": str(self.guild_id), "position": self.position, "nsfw": self.nsfw,
                "topic": None, "parent_id": None, "last_message_id": None, "flags": 0,
                "rate_limit_per_user": 0, "permission_overwrites": []}


@dataclass(frozen=True, slots=True)
class FakeGuild:
    """A guild: its channels, roles and members (user id → role ids)."""

    id: int
    name: str
    owner_id: int
    channels: tuple[FakeChannel, ...]
    roles: tuple[FakeRole, ...]
    users: tuple[FakeUser, ...]
    member_roles: dict[int, tuple[int, ...]] = field(default_factory=dict)

    def user(self, user_id: int) -> FakeUser:
        return next(u for u in self.users if u.id == user_id)

    def channel(self, channel_id: int) -> FakeChannel:
        return next(c for c in self.channels if c.id == channel_id)

    def permissions_of(self, user_id: int) -> int:
        """Total permissions, as Discord computes them for ``member.permissions``."""
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        wanted = {self.id, *self.member_roles.get(user_id, ())}
        total = 0
        for role in self.roles:
            if role.id in wanted:
                total |= role.permissions
        return ALL_PERMISSIONS if total & ADMINISTRATOR else total

    def member_api(self, user: FakeUser, *, with_permissions: bool = False) -> JSON:
        member: JSON = {"user": user.to_api(), "roles": [str(r) for r in
                                                         self.member_roles.get(user.id, ())],
                        "nick": None, "avatar": None, "banner": None, "flags": 0,
                        "joined_at": "2024-01-01T00:00:00+00:00", "premium_since": None,
                        "deaf": False, "mute": False, "pending": False,
                        "communication_disabled_until": None}
        if with_permissions:
            member["permissions"] = str(self.permissions_of(user.id))
        return member

    def guild_create(self) -> JSON:
        """The GUILD_CREATE dispatch data."""
        return {
            "id": str(self.id), "name": self.name, "unavailable": False, "icon": None,
            "owner_id": str(self.owner_id), "member_count": len(self.users), "large": False,
            "joined_at": "2024-01-01T00:00:00+00:00", "afk_timeout": 300,
            "verification_level": 0, "default_message_notifications": 0,
            "explicit_content_filter": 0, "mfa_level": 0, "nsfw_level": 0,
            "roles": [r.to_api() for r in self.roles],
            "channels": [c.to_api() for c in self.channels],
            "members": [self.member_api(u) for u in self.users],
            "threads": [], "emojis": [], "stickers": [], "features": [], "voice_states": [],
            "presences": [], "stage_instances": [], "guild_scheduled_events": [],
            "soundboard_sounds": [], "premium_tier": 0, "premium_subscription_count": 0,
            "preferred_locale": "en-US", "system_channel_id": None, "system_channel_flags": 0,
            "rules_channel_id": None, "application_id": None, "max_members": 500000,
        }


APP_ID = 111111111111111111
BOT = FakeUser(222222222222222222, "img2img", bot=True)
GUILD_ID = 333333333333333333
OWNER = FakeUser(555555555555555551, "carol")  # owns the guild and the application
ADMIN = FakeUser(555555555555555552, "alice")  # has Manage Server through the mods role
MEMBER = FakeUser(555555555555555553, "bob")  # plain member, no Manage Server
OUTSIDER = FakeUser(555555555555555554, "dave")  # not in the guild (DMs only)
GENERAL = FakeChannel(444444444444444441, "general", GUILD_ID)
NSFW = FakeChannel(444444444444444442, "nsfw-art", GUILD_ID, nsfw=True, position=1)
EVERYONE_ROLE = FakeRole(GUILD_ID, "@everyone", EVERYONE_PERMISSIONS)
MODS_ROLE = FakeRole(666666666666666661, "mods", MODERATOR_PERMISSIONS, position=1)
GUILD = FakeGuild(
    id=GUILD_ID, name="Fake Guild", owner_id=OWNER.id, channels=(GENERAL, NSFW),
    roles=(EVERYONE_ROLE, MODS_ROLE), users=(BOT, OWNER, ADMIN, MEMBER),
    member_roles={ADMIN.id: (MODS_ROLE.id,)},
)


def dm_channel_id(user: FakeUser) -> int:
    """The stable id of the bot's DM channel with ``user``."""
    return 770000000000000000 + user.id % 10**15


def dm_channel(user: FakeUser) -> FakeChannel:
    return FakeChannel(dm_channel_id(user), "", None, type=DM_CHANNEL)
