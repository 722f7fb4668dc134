"""A fake Discord (gateway + REST + CDN) that real discord.py runs against, and what users see.

Reference for test writers (details in each docstring):

* ``async with FakeDiscord() as fake`` starts it; ``point_discord_py_at(fake, monkeypatch)``
  (or ``with discord_py_pointed_at(fake)``) sends discord.py there; ``async with run_bot(fake,
  bot)`` starts a bot and returns once ``on_ready`` fired.
* Build interactions with ``tests.fakes.discord_payloads`` and send them with
  ``rec = await fake.inject_interaction(payload)``; ``fake.press(...)`` and
  ``fake.submit_modal(...)`` build and send button presses and modal submits for you.
* Look at what users see with ``fake.original(token)``, ``fake.followups(token)``,
  ``fake.modal(token)``, ``fake.choices(token)``, ``fake.channel_messages(channel_id)``, and wait
  for it with ``await fake.wait_for(lambda: ..., timeout)``.
* ``fake.fail_next(method, path_regex, status)`` injects failures (429 with retry_after, 5xx…).
* ``fake.shop`` sells SKUs: entitlements, ENTITLEMENT_CREATE, listing and consume
  (``discord_entitlements.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import discord
import discord.gateway
import discord.http
import pytest
import yarl
from aiohttp import web

from tests.fakes.discord_entitlements import Shop
from tests.fakes.discord_model import FakeMessage, InteractionRecord, Upload, read_body
from tests.fakes.discord_payloads import component_press, modal_submit
from tests.fakes.discord_rest import BotRoutes
from tests.fakes.discord_state import TOKEN, ApiCall, DiscordState, Fault
from tests.fakes.discord_webhooks import InteractionRoutes
from tests.fakes.discord_world import JSON, MEMBER, FakeChannel, FakeUser, dm_channel
from tests.fakes.server import FakeServer, json_response

__all__ = ["TOKEN", "ApiCall", "FakeDiscord", "Fault", "discord_py_pointed_at",
           "point_discord_py_at", "run_bot"]
API = "/api/v10"
ClientT = TypeVar("ClientT", bound=discord.Client)
DEFAULT_ERRORS = {
    400: {"message": "400: Bad Request", "code": 0},
    401: {"message": "401: Unauthorized", "code": 0},
    403: {"message": "Missing Permissions", "code": 50013},
    404: {"message": "404: Not Found", "code": 0},
    413: {"message": "Request entity too large", "code": 40005},
    500: {"message": "500: Internal Server Error", "code": 0},
    502: {"message": "502: Bad Gateway", "code": 0},
    503: {"message": "503: Service Unavailable", "code": 0},
}


CALL = web.RequestKey("call", ApiCall)


class FakeDiscord(DiscordState, FakeServer):
    """Gateway at ``/gateway``, REST under ``/api/v10``, CDN under ``/attachments``.

    Keywords: see ``DiscordState``. Entitlements (SKU purchases): ``fake.shop``.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.shop = Shop(self)

    # -- server plumbing ------------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.middlewares.append(self._api_middleware)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/attachments/{cid}/{aid}/{name}", self._cdn)
        app.router.add_get("/ephemeral-attachments/{cid}/{aid}/{name}", self._cdn)
        app.router.add_get("/external/{name}", self._external)
        InteractionRoutes(self).add_to(app, API)
        BotRoutes(self).add_to(app, API)
        self.shop.add_to(app, API)
        app.router.add_route("*", API + "/{tail:.*}", self._unknown)

    async def start(self) -> str:
        base = await super().start()
        self.gateway.url = f"ws://127.0.0.1:{self.port}/gateway"
        return base

    async def stop(self) -> None:
        self.shop.release_consumes()
        await self.gateway.close_all()
        await super().stop()

    @property
    def api_base(self) -> str:
        """``http://127.0.0.1:PORT/api/v10``: discord.py's ``Route.BASE`` (config api_base)."""
        return self.base_url + API

    @property
    def gateway_url(self) -> str:
        """``ws://127.0.0.1:PORT/gateway``: the gateway (config gateway_url)."""
        return self.gateway.url

    @web.middleware
    async def _api_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path.removeprefix(API)
        call = ApiCall(request.method, path, dict(request.query))
        request[CALL] = call
        if path != request.path:
            self.calls.append(call)
        fault = next((f for f in self.faults if f.matches(request.method, path)), None)
        try:
            if fault is not None:
                fault.hits += 1
                await request.read()
                response: web.StreamResponse = self._fault_response(fault)
            elif path != request.path and self._needs_auth(path) and \
                    request.headers.get("Authorization") != f"Bot {self.token}":
                response = json_response(DEFAULT_ERRORS[401], 401)
            else:
                response = await handler(request)
        except web.HTTPException as exc:
            call.status = exc.status
            raise
        call.status = response.status
        await self._notify()
        return response

    @staticmethod
    def _needs_auth(path: str) -> bool:
        token_route = path.startswith("/interactions/") or re.match(r"^/webhooks/\d+/[^/]+", path)
        return not token_route

    def _fault_response(self, fault: Fault) -> web.Response:
        body = fault.body if fault.body is not None else DEFAULT_ERRORS.get(
            fault.status, {"message": f"{fault.status}", "code": 0})
        if isinstance(body, Mapping):
            return json_response(dict(body), fault.status, **fault.headers)
        return web.Response(text=str(body), status=fault.status, headers=fault.headers)

    async def read_body(self, request: web.Request) -> tuple[Any, list[Upload]]:
        payload, uploads = await read_body(request)
        call = request[CALL]
        call.payload, call.uploads = payload, uploads
        return payload, uploads

    async def _unknown(self, request: web.Request) -> web.Response:
        self.unknown.append((request.method, request.path.removeprefix(API)))
        return json_response(DEFAULT_ERRORS[404], 404)

    async def _external(self, request: web.Request) -> web.Response:
        """The media proxy's copy of an outside image: here a redirect set in ``external``."""
        self.cdn_gets.append(request.path)
        target = self.external.get(request.match_info["name"])
        if target is None:
            return web.Response(status=404)
        raise web.HTTPFound(target)

    async def _cdn(self, request: web.Request) -> web.Response:
        self.cdn_gets.append(request.path)
        aid = request.match_info["aid"]
        att = self.cdn.get(int(aid)) if aid.isdigit() else None
        if att is None or att.filename != request.match_info["name"]:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=att.data, content_type=att.content_type.split(";")[0])

    # -- public API: acting as Discord and its users ----------------------------------------------
    async def dispatch(self, event: str, data: JSON, *, timeout: float = 5.0) -> None:
        """Send any gateway dispatch once a session is up (to the shard owning its guild)."""
        await self.wait_for(lambda: self.gateway.live_sessions, timeout)
        if not await self.gateway.dispatch(event, data):
            raise AssertionError(f"no live gateway session takes {event} "
                                 f"for guild {data.get('guild_id')}")

    async def inject_interaction(self, payload: JSON, *, timeout: float = 5.0) -> InteractionRecord:
        """Send INTERACTION_CREATE; the record (``.id``, ``.token``) collects the bot's answers.

        Sending the same payload again is a re-delivery: it shares the first one's record.
        """
        for msg in [payload.get("message"), *((payload.get("data") or {}).get(
                "resolved", {}).get("messages", {}).values())]:
            if msg:
                self.adopt_message(msg)
        if "user" in payload:  # a DM: the bot may also post there with channel.send
            user = payload["user"]
            self.dm_users[int(payload["channel"]["id"])] = self.user(int(user["id"])) or FakeUser(
                int(user["id"]), user["username"])
        await self.wait_for(lambda: self.gateway.live_sessions, timeout)
        rec = self.interactions.get(payload["token"]) or InteractionRecord(
            int(payload["id"]), payload["token"], payload, asyncio.get_running_loop().time())
        self.interactions[rec.token] = rec
        await self.dispatch("INTERACTION_CREATE", payload, timeout=timeout)
        return rec

    async def press(self, message: FakeMessage | int, *, label: str | None = None,
                    custom_id: str | None = None, emoji: str | None = None,
                    user: FakeUser = MEMBER, values: Sequence[str] | None = None,
                    ) -> InteractionRecord:
        """``user`` presses the button (or picks ``values`` in the select) on ``message``."""
        msg = message if isinstance(message, FakeMessage) else self.message(message)
        if values is None:
            button = msg.button(label, custom_id=custom_id, emoji=emoji)
            custom_id, kind = button["custom_id"], 2
        else:
            kind = 3
        assert custom_id is not None
        guild = self.guild(msg.guild_id)
        channel = guild.channel(msg.channel_id) if guild else FakeChannel(
            msg.channel_id, "", None, type=1)
        return await self.inject_interaction(component_press(
            msg.to_api(), custom_id, component_type=kind, values=values, user=user, guild=guild,
            channel=channel))

    async def submit_modal(self, token: str, values: Mapping[str, str], *,
                           user: FakeUser | None = None) -> InteractionRecord:
        """Fill in and submit the modal opened in answer to interaction ``token``."""
        rec = self.interaction(token)
        modal = rec.modal
        if modal is None:
            raise AssertionError("the bot opened no modal for this interaction")
        guild = self.guild(rec.guild_id)
        user = user or self.user(int(rec.user["id"])) or FakeUser(int(rec.user["id"]), "user")
        channel = guild.channel(rec.channel_id) if guild else dm_channel(user)
        payload = modal_submit(modal["custom_id"], values, layout=modal["components"], user=user,
                               guild=guild, channel=channel,
                               attachment_size_limit=rec.attachment_size_limit)
        if rec.message is not None:
            payload["message"] = self.adopt_message(rec.message).to_api()
        return await self.inject_interaction(payload)

    async def delete_message(self, message_id: int) -> None:
        """Someone (a user or moderator) deletes the message, as the client would."""
        msg = self.message(message_id)
        msg.deleted = True
        await self.emit("MESSAGE_DELETE", msg)
        await self._notify()

    def expire(self, token: str) -> None:
        """Let the interaction's token expire (callbacks 404 10062, webhooks 401 50027)."""
        self.interaction(token).expired = True

    def fail_next(self, method: str, path_regex: str, status: int, body: Any = None, *,
                  times: int = 1, retry_after: float = 0.05,
                  headers: Mapping[str, str] | None = None) -> Fault:
        """Answer the next ``times`` matching requests with ``status`` (path without /api/v10).

        A 429 gets Discord's body and headers, ``Via`` included: discord.py treats a 429
        without ``Via`` as a Cloudflare ban and raises instead of retrying.
        """
        extra = dict(headers or {})
        if status == 429:
            body = body if body is not None else {"message": "You are being rate limited.",
                                                  "retry_after": retry_after, "global": False}
            extra = {"Via": "1.1 google", "Retry-After": str(max(1, round(retry_after))),
                     "X-RateLimit-Scope": "user", "X-RateLimit-Limit": "5",
                     "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": str(retry_after),
                     "X-RateLimit-Bucket": "fakebucket", **extra}
        fault = Fault(method.upper(), re.compile(path_regex), status, body, extra, times)
        self.faults.append(fault)
        return fault

    async def reconnect(self) -> None:
        """Ask the bot to reconnect (op 7); discord.py then RESUMEs its session."""
        await self.gateway.send_op(7)


def point_discord_py_at(fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> None:
    """Send discord.py's REST, webhooks, gateway and asset URLs to ``fake`` for one test."""
    monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY",
                        yarl.URL(fake.gateway_url))
    monkeypatch.setattr(discord.asset.Asset, "BASE", fake.base_url)


@contextlib.contextmanager
def discord_py_pointed_at(fake: FakeDiscord) -> Iterator[None]:
    """``point_discord_py_at`` without pytest: restores the URLs on exit."""
    with pytest.MonkeyPatch.context() as mp:
        point_discord_py_at(fake, mp)
        yield


async def _race(task: asyncio.Task[None], step: Awaitable[object], what: str, timeout: float,
                ) -> None:
    other = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task, other}, timeout=timeout,
                                 return_when=asyncio.FIRST_COMPLETED)
    if other in done:
        other.result()
        return
    other.cancel()
    if task in done:
        task.result()  # re-raises why the bot stopped
        raise AssertionError(f"the bot stopped before {what}")
    raise AssertionError(f"the bot did not reach {what} within {timeout}s")


@contextlib.asynccontextmanager
async def run_bot(fake: FakeDiscord, bot: ClientT, *, timeout: float = 5.0,
                  ) -> AsyncIterator[ClientT]:
    """Start ``bot`` against ``fake``, yield once it is ready, close it on exit."""
    before = len(fake.gateway.identifies)
    task = asyncio.create_task(bot.start(fake.token), name="fake-discord-bot")
    try:
        await _race(task, fake.wait_for(lambda: len(fake.gateway.identifies) > before,
                                        timeout), "IDENTIFY", timeout)
        await _race(task, bot.wait_until_ready(), "on_ready", timeout)
        yield bot
    finally:
        await bot.close()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout)
