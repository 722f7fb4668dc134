"""Bot-token REST routes of the fake Discord: identity, commands, channels, messages, users."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.discord_limits import EMPTY_MESSAGE, TOO_LARGE, command_problems, form_error
from tests.fakes.discord_limits import message_problems as message_form_problems
from tests.fakes.discord_model import (
    COMPONENTS_V2,
    SUPPRESS_EMBEDS,
    apply_payload,
    oversized,
)
from tests.fakes.discord_webhooks import UNKNOWN_MESSAGE, would_be_empty
from tests.fakes.discord_world import BOT, JSON, MANAGE_MESSAGES, dm_channel
from tests.fakes.server import json_response

if TYPE_CHECKING:
    from tests.fakes.discord_api import FakeDiscord

SUPPRESS_NOTIFICATIONS = 1 << 12
UNKNOWN_CHANNEL = {"message": "Unknown Channel", "code": 10003}
UNKNOWN_USER = {"message": "Unknown User", "code": 10013}
UNKNOWN_MEMBER = {"message": "Unknown Member", "code": 10007}
UNKNOWN_GUILD = {"message": "Unknown Guild", "code": 10004}
NOT_AUTHOR = {"message": "Cannot edit a message authored by another user", "code": 50005}
MISSING_PERMISSIONS = {"message": "Missing Permissions", "code": 50013}


@dataclass(frozen=True, slots=True)
class CommandPut:
    """One bulk overwrite of application commands (``guild_id`` None for global ones)."""

    guild_id: int | None
    commands: list[JSON]


class BotRoutes:
    """Routes that need ``Authorization: Bot <token>`` (checked by the fake's middleware)."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake

    def add_to(self, app: web.Application, p: str) -> None:
        r = app.router
        r.add_get(p + "/users/@me", self.me)
        r.add_get(p + "/oauth2/applications/@me", self.application)
        r.add_get(p + "/applications/@me", self.application)
        r.add_get(p + "/gateway", self.gateway)
        r.add_get(p + "/gateway/bot", self.gateway)
        for path in ("/applications/{app}/commands", "/applications/{app}/guilds/{gid}/commands"):
            r.add_get(p + path, self.get_commands)
            r.add_put(p + path, self.put_commands)
        r.add_get(p + "/channels/{cid}", self.get_channel)
        r.add_post(p + "/channels/{cid}/typing", self.typing)
        r.add_post(p + "/channels/{cid}/messages", self.create_message)
        for method in ("GET", "PATCH", "DELETE"):
            r.add_route(method, p + "/channels/{cid}/messages/{mid}", self.channel_message)
        r.add_post(p + "/users/@me/channels", self.create_dm)
        r.add_get(p + "/users/{uid}", self.get_user)
        r.add_get(p + "/guilds/{gid}/members/{uid}", self.get_member)

    async def me(self, request: web.Request) -> web.Response:
        return json_response({**BOT.to_api(), "verified": True, "mfa_enabled": False,
                              "email": None, "locale": "en-US"})

    async def application(self, request: web.Request) -> web.Response:
        fake = self.fake
        # No interactions_endpoint_url: with one, discord.py warns interactions won't arrive.
        return json_response({
            "id": str(fake.app_id), "name": "img2img", "description": "", "icon": None,
            "bot_public": True, "bot_require_code_grant": False, "verify_key": "0" * 64,
            "owner": fake.app_owner.to_api(), "team": None, "flags": 0, "summary": "",
            "rpc_origins": [], "tags": [], "redirect_uris": [], "bot": BOT.to_api(),
            "approximate_guild_count": len(fake.guilds),
        })

    async def gateway(self, request: web.Request) -> web.Response:
        body: JSON = {"url": self.fake.gateway.url}
        if request.path.endswith("/bot"):
            body.update(shards=self.fake.shards, session_start_limit={
                "total": 1000, "remaining": 999, "reset_after": 86400000, "max_concurrency": 1})
        return json_response(body)

    def _scope(self, request: web.Request) -> int | None:
        gid = request.match_info.get("gid")
        return int(gid) if gid else None

    async def get_commands(self, request: web.Request) -> web.Response:
        return json_response(self.fake.commands(self._scope(request)))

    async def put_commands(self, request: web.Request) -> web.Response:
        fake = self.fake
        body, _ = await fake.read_body(request)
        scope = self._scope(request)
        fake.command_puts.append(CommandPut(scope, body))
        error = form_error(command_problems(body))
        if error is not None:
            return json_response(error, 400)
        fake.registered[scope] = [fake.registered_command(c, scope) for c in body]
        return json_response(fake.registered[scope])

    async def get_channel(self, request: web.Request) -> web.Response:
        found = self.fake.channel(int(request.match_info["cid"]))
        if found is None:
            return json_response(UNKNOWN_CHANNEL, 404)
        channel, recipient = found
        return json_response(channel.to_api(recipient=recipient))

    async def typing(self, request: web.Request) -> web.Response:
        if self.fake.channel(int(request.match_info["cid"])) is None:
            return json_response(UNKNOWN_CHANNEL, 404)
        self.fake.typing.append(int(request.match_info["cid"]))
        return web.Response(status=204)

    async def create_message(self, request: web.Request) -> web.Response:
        fake = self.fake
        data, uploads = await fake.read_body(request)
        found = fake.channel(int(request.match_info["cid"]))
        if found is None:
            return json_response(UNKNOWN_CHANNEL, 404)
        data = data or {}
        problem = self._message_problem(data, uploads, None)
        if problem is not None:
            return problem
        channel, _ = found
        msg = fake.new_message(channel.id, channel.guild_id)
        flags = data.get("flags") or 0
        data = {**data, "flags": flags & (SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | COMPONENTS_V2)}
        apply_payload(msg, data, uploads, fake.make_attachment, editing=False)
        if data.get("message_reference"):
            msg.extra["message_reference"] = data["message_reference"]
            msg.type = 19
        await fake.emit("MESSAGE_CREATE", msg)
        return json_response(msg.to_api())

    def _message_problem(self, data: JSON, uploads: Any, current: Any) -> web.Response | None:
        error = form_error(message_form_problems(data))
        if error is not None:
            return json_response(error, 400)
        if oversized(uploads, self.fake.upload_limit):
            return json_response(TOO_LARGE, 413)
        if would_be_empty(current, data, uploads):
            return json_response(EMPTY_MESSAGE, 400)
        return None

    async def channel_message(self, request: web.Request) -> web.Response:
        fake = self.fake
        data, uploads = await fake.read_body(request)
        msg = fake.messages.get(int(request.match_info["mid"]))
        if msg is None or str(msg.channel_id) != request.match_info["cid"] or msg.deleted \
                or msg.ephemeral:
            return json_response(UNKNOWN_MESSAGE, 404)
        own = msg.author.get("id") == str(BOT.id)
        if request.method == "GET":
            return json_response(msg.to_api())
        if request.method == "DELETE":
            guild = fake.guild(msg.guild_id)
            if not own and (guild is None or not guild.permissions_of(BOT.id) & MANAGE_MESSAGES):
                return json_response(MISSING_PERMISSIONS, 403)
            msg.deleted = True
            await fake.emit("MESSAGE_DELETE", msg)
            return web.Response(status=204)
        if not own:
            return json_response(NOT_AUTHOR, 403)
        data = data or {}
        problem = self._message_problem(data, uploads, msg)
        if problem is not None:
            return problem
        apply_payload(msg, data, uploads, fake.make_attachment, editing=True)
        await fake.emit("MESSAGE_UPDATE", msg)
        return json_response(msg.to_api())

    async def create_dm(self, request: web.Request) -> web.Response:
        fake = self.fake
        body, _ = await fake.read_body(request)
        user = fake.user(int((body or {}).get("recipient_id") or 0))
        if user is None:
            return json_response(UNKNOWN_USER, 404)
        fake.dm_users[dm_channel(user).id] = user
        return json_response(dm_channel(user).to_api(recipient=user))

    async def get_user(self, request: web.Request) -> web.Response:
        uid = request.match_info["uid"]
        user = self.fake.user(int(uid)) if uid.isdigit() else None
        if user is None:
            return json_response(UNKNOWN_USER, 404)
        return json_response(user.to_api())

    async def get_member(self, request: web.Request) -> web.Response:
        guild = self.fake.guild(int(request.match_info["gid"]))
        if guild is None:
            return json_response(UNKNOWN_GUILD, 404)
        user = next((u for u in guild.users if str(u.id) == request.match_info["uid"]), None)
        if user is None:
            return json_response(UNKNOWN_MEMBER, 404)
        return json_response(guild.member_api(user))
