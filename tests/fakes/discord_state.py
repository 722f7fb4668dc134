"""The fake Discord's state: messages, interactions, commands, files, and accessors on them."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from tests.fakes.discord_gateway import FakeGateway
from tests.fakes.discord_model import FakeAttachment, FakeMessage, InteractionRecord, Upload, sniff
from tests.fakes.discord_payloads import DEFAULT_ATTACHMENT_LIMIT
from tests.fakes.discord_rest import CommandPut
from tests.fakes.discord_world import (
    APP_ID,
    BOT,
    GUILD,
    JSON,
    OUTSIDER,
    FakeChannel,
    FakeGuild,
    FakeUser,
    dm_channel,
    snowflake,
    snowflake_time,
)

TOKEN = "fake-bot-token"
T = TypeVar("T")


@dataclass(slots=True)
class ApiCall:
    """One REST request (``path`` relative to /api/v10) and the status it got."""

    method: str
    path: str
    query: dict[str, str]
    payload: Any = None
    uploads: list[Upload] = field(default_factory=list)
    status: int = 0


@dataclass(slots=True)
class Fault:
    """A failure ``fail_next`` queued; ``hits`` counts the requests it answered."""

    method: str
    pattern: re.Pattern[str]
    status: int
    body: Any
    headers: dict[str, str]
    times: int
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return self.hits < self.times and self.method in ("*", method) and bool(
            self.pattern.search(path))


class DiscordState:
    """Everything the fake's routes update; the accessors are how tests see what users see."""

    base_url: str  # provided by the server

    def __init__(self, *, token: str = TOKEN, guilds: Sequence[FakeGuild] = (GUILD,),
                 app_owner: FakeUser | None = None, heartbeat_ms: int = 41250, shards: int = 1,
                 upload_limit: int = DEFAULT_ATTACHMENT_LIMIT,
                 callback_deadline: float | None = 3.0, message_events: bool = True,
                 token_lifetime: float = 15 * 60.0) -> None:
        super().__init__()  # the server, in FakeDiscord's MRO
        self.token, self.app_id, self.guilds = token, APP_ID, tuple(guilds)
        self.shards = shards  # what GET /gateway/bot advises
        self.app_owner = app_owner or next((g.user(g.owner_id) for g in self.guilds), OUTSIDER)
        self.upload_limit = upload_limit  # per file, for channel messages (not interactions)
        self.callback_deadline = callback_deadline  # Discord's 3 s to answer; None: no limit
        self.message_events = message_events  # MESSAGE_CREATE/UPDATE/DELETE for bot messages
        # An interaction's webhook token works this long from the moment in its id.
        self.token_lifetime = token_lifetime
        self.gateway = FakeGateway(token=token, guilds=self.guilds, heartbeat_ms=heartbeat_ms,
                                   notify=self._notify)
        self.calls: list[ApiCall] = []
        self.unknown: list[tuple[str, str]] = []  # REST routes the fake does not know
        self.messages: dict[int, FakeMessage] = {}
        self.interactions: dict[str, InteractionRecord] = {}  # by token
        self.command_puts: list[CommandPut] = []
        self.registered: dict[int | None, list[JSON]] = {}  # scope (guild id or None) → commands
        self.cdn: dict[int, FakeAttachment] = {}
        self.cdn_gets: list[str] = []
        self.external: dict[str, str] = {}  # media-proxy name -> where /external/NAME redirects
        self.typing: list[int] = []
        self.dm_users: dict[int, FakeUser] = {}
        self.faults: list[Fault] = []
        self._command_ids: dict[tuple[int | None, int, str], int] = {}
        self._cond = asyncio.Condition()

    async def _notify(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    # -- the model the routes update -------------------------------------------------------------
    def interaction_by_id(self, iid: int) -> InteractionRecord | None:
        return next((r for r in self.interactions.values() if r.id == iid), None)

    def callback_expired(self, rec: InteractionRecord) -> bool:
        late = self.callback_deadline is not None and \
            asyncio.get_running_loop().time() - rec.created > self.callback_deadline
        return rec.expired or late

    def token_expired(self, rec: InteractionRecord) -> bool:
        """Whether the interaction's webhook token no longer works (401 50027)."""
        return rec.expired or time.time() > snowflake_time(rec.id) + self.token_lifetime

    def guild(self, guild_id: int | None) -> FakeGuild | None:
        return next((g for g in self.guilds if g.id == guild_id), None)

    def user(self, user_id: int) -> FakeUser | None:
        everyone = [u for g in self.guilds for u in g.users] + [OUTSIDER, self.app_owner]
        return next((u for u in everyone if u.id == user_id), None)

    def channel(self, channel_id: int) -> tuple[FakeChannel, FakeUser | None] | None:
        """A guild channel, or a DM channel opened with ``POST /users/@me/channels``."""
        for guild in self.guilds:
            for channel in guild.channels:
                if channel.id == channel_id:
                    return channel, None
        user = self.dm_users.get(channel_id)
        return (dm_channel(user), user) if user is not None else None

    def new_message(self, channel_id: int, guild_id: int | None, *,
                    interaction: InteractionRecord | None = None) -> FakeMessage:
        msg = FakeMessage(snowflake(), channel_id, guild_id, BOT.to_api())
        if interaction is not None:
            msg.interaction_token = interaction.token
            command = (interaction.payload.get("data") or {}).get("name")
            msg.extra.update(webhook_id=str(self.app_id), application_id=str(self.app_id),
                             interaction_metadata={
                                 "id": str(interaction.id), "type": interaction.type,
                                 "user": interaction.user, **({"name": command} if command else {}),
                                 "authorizing_integration_owners":
                                     interaction.payload.get("authorizing_integration_owners", {})})
        self.messages[msg.id] = msg
        return msg

    def adopt_message(self, data: JSON) -> FakeMessage:
        """The stored message for ``data`` (a message dict from a payload), storing it if new."""
        known = self.messages.get(int(data["id"]))
        if known is not None:
            return known
        gid = data.get("guild_id")
        msg = FakeMessage(int(data["id"]), int(data["channel_id"]), int(gid) if gid else None,
                          data["author"], data.get("content") or "", list(data.get("embeds") or []),
                          list(data.get("components") or []), flags=data.get("flags") or 0,
                          type=data.get("type") or 0)
        for att in data.get("attachments") or []:
            stored = self.cdn.get(int(att["id"]))
            msg.attachments.append(stored or FakeAttachment(
                int(att["id"]), att["filename"], b"", att["url"],
                att.get("content_type") or "application/octet-stream"))
        self.messages[msg.id] = msg
        return msg

    def make_attachment(self, upload: Upload, channel_id: int, description: str | None,
                        ) -> FakeAttachment:
        return self._store_file(upload.filename, upload.data, None, channel_id, description)

    def _store_file(self, filename: str, data: bytes, content_type: str | None, channel_id: int,
                    description: str | None = None, ephemeral: bool = False) -> FakeAttachment:
        aid = snowflake()
        sniffed, width, height = sniff(filename, data)
        folder = (f"ephemeral-attachments/{self.app_id}" if ephemeral
                  else f"attachments/{channel_id}")
        url = f"{self.base_url}/{folder}/{aid}/{filename}?ex=0&is=0&hm=fake"
        att = FakeAttachment(aid, filename, data, url, content_type or sniffed, width, height,
                             description, ephemeral)
        self.cdn[aid] = att
        return att

    async def emit(self, event: str, msg: FakeMessage) -> None:
        """The gateway event Discord sends the bot about one of its messages."""
        if not self.message_events or msg.ephemeral or not self.gateway.live_sessions:
            return
        data = msg.to_api()
        if event == "MESSAGE_DELETE":
            data = {k: data[k] for k in ("id", "channel_id", "guild_id") if k in data}
        await self.gateway.dispatch(event, data)

    def registered_command(self, cmd: JSON, scope: int | None) -> JSON:
        """A command as Discord echoes it: same id across syncs for the same name and type."""
        key = (scope, cmd.get("type", 1), cmd["name"])
        cid = self._command_ids.setdefault(key, snowflake())
        out = {"type": 1, "description": "", "default_member_permissions": None, "nsfw": False,
               "contexts": None, "integration_types": [0], **cmd, "id": str(cid),
               "application_id": str(self.app_id), "version": str(snowflake())}
        if out["default_member_permissions"] is not None:  # sent as an int, echoed as a string
            out["default_member_permissions"] = str(out["default_member_permissions"])
        if scope is not None:
            out["guild_id"] = str(scope)
        return out

    # -- public API: what users see ---------------------------------------------------------------
    @property
    def put_count(self) -> int:
        """How many bulk command overwrites (global and guild) the bot sent."""
        return len(self.command_puts)

    def commands(self, guild_id: int | None = None) -> list[JSON]:
        """The commands currently registered globally (or in ``guild_id``)."""
        return list(self.registered.get(guild_id, []))

    def seed_commands(self, commands: Sequence[JSON], guild_id: int | None = None) -> None:
        """Pretend ``commands`` were registered before (no PUT is counted)."""
        self.registered[guild_id] = [self.registered_command(dict(c), guild_id) for c in commands]

    def interaction(self, token_or_id: str | int) -> InteractionRecord:
        rec = self.interactions.get(str(token_or_id)) or self.interaction_by_id(int(
            token_or_id) if str(token_or_id).isdigit() else 0)
        if rec is None:
            raise KeyError(f"no interaction {token_or_id!r} was injected")
        return rec

    def original(self, token: str) -> FakeMessage | None:
        """The interaction's @original message (deleted ones too: check ``.deleted``)."""
        rec = self.interaction(token)
        return self.messages.get(rec.original_id) if rec.original_id else None

    def followups(self, token: str) -> list[FakeMessage]:
        """Follow-up messages in order; the first one after a defer *is* the original."""
        return [self.messages[m] for m in self.interaction(token).followup_ids]

    def modal(self, token: str) -> JSON | None:
        """The modal the bot opened in answer to this interaction (custom_id, title, components)."""
        return self.interaction(token).modal

    def choices(self, token: str) -> list[JSON] | None:
        """The autocomplete choices the bot returned ({name, value} dicts)."""
        return self.interaction(token).choices

    def message(self, message_id: int | str) -> FakeMessage:
        return self.messages[int(message_id)]

    def channel_messages(self, channel_id: int, *, include_deleted: bool = False,
                         include_ephemeral: bool = True) -> list[FakeMessage]:
        """Every message in the channel, oldest first (interaction replies included)."""
        return sorted((m for m in self.messages.values() if m.channel_id == channel_id
                       and (include_deleted or not m.deleted)
                       and (include_ephemeral or not m.ephemeral)), key=lambda m: m.id)

    async def wait_for(self, predicate: Callable[[], T | Literal[False] | None],
                       timeout: float = 5.0, *, poll: float = 0.05) -> T:
        """Wait until ``predicate()`` is truthy and return it.

        Re-checked after every request and gateway op the fake handles, and every ``poll``
        seconds for predicates on the bot's own state.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with self._cond:
            while not (result := predicate()):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    recent = [(c.method, c.path, c.status) for c in self.calls[-8:]]
                    raise AssertionError(f"not true within {timeout}s; last calls: {recent}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._cond.wait(), min(poll, remaining))
            return result

    def add_attachment(self, filename: str, data: bytes, content_type: str | None = None, *,
                       channel_id: int = 0, ephemeral: bool = False) -> JSON:
        """Host ``data`` on the fake CDN; returns the attachment object for payloads."""
        return self._store_file(filename, data, content_type, channel_id, None, ephemeral).to_api()
