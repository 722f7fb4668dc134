"""The fake Discord gateway: HELLO, heartbeats, IDENTIFY/READY, RESUME and dispatches."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from tests.fakes.discord_world import APP_ID, BOT, JSON, FakeGuild

GUILDS_INTENT = 1 << 0
MEMBERS_INTENT = 1 << 1
AUTHENTICATION_FAILED = 4004


@dataclass(slots=True)
class GatewaySession:
    """One identified session; it survives reconnects that RESUME it."""

    id: str
    shard: tuple[int, int]
    intents: int
    ws: web.WebSocketResponse | None
    seq: int = 0
    sent: list[JSON] = field(default_factory=list)  # every dispatch, for RESUME replays
    resumes: int = 0

    @property
    def live(self) -> bool:
        return self.ws is not None and not self.ws.closed

    def owns(self, guild_id: int | None) -> bool:
        shard_id, count = self.shard
        return count == 1 or ((guild_id or 0) >> 22) % count == shard_id


class FakeGateway:
    """Speaks the gateway protocol on ``/gateway``; ``dispatch`` pushes events to the bot."""

    def __init__(self, *, token: str, guilds: Sequence[FakeGuild], heartbeat_ms: int,
                 notify: Callable[[], Awaitable[None]]) -> None:
        self.token = token
        self.guilds = guilds
        self.heartbeat_ms = heartbeat_ms
        self.notify = notify
        self.url = ""  # ws://127.0.0.1:PORT/gateway, set once the server runs
        self.sessions: list[GatewaySession] = []
        self.received: list[JSON] = []  # every client payload, in order
        self.heartbeats = 0
        self.identifies: list[JSON] = []
        self.queries: list[dict[str, str]] = []  # ?v=10&encoding=json&compress=...
        self._sockets: set[web.WebSocketResponse] = set()

    @property
    def live_sessions(self) -> list[GatewaySession]:
        return [s for s in self.sessions if s.live]

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        self.queries.append(dict(request.query))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": self.heartbeat_ms}})
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_payload(ws, json.loads(msg.data))
                    await self.notify()
        finally:
            self._sockets.discard(ws)
            await self.notify()
        return ws

    async def _on_payload(self, ws: web.WebSocketResponse, payload: JSON) -> None:
        self.received.append(payload)
        op, data = payload.get("op"), payload.get("d")
        if op == 1:
            self.heartbeats += 1
            await ws.send_json({"op": 11})
        elif op == 2:
            await self._identify(ws, data or {})
        elif op == 6:
            await self._resume(ws, data or {})
        elif op == 8:
            await self._request_members(ws, data or {})

    async def _identify(self, ws: web.WebSocketResponse, data: JSON) -> None:
        if data.get("token") != self.token:
            await ws.close(code=AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return
        self.identifies.append(data)
        shard_id, count = data.get("shard") or (0, 1)
        session = GatewaySession(secrets.token_hex(16), (shard_id, count),
                                 int(data.get("intents", 0)), ws)
        self.sessions.append(session)
        mine = [g for g in self.guilds if session.owns(g.id)]
        await self._send(session, "READY", {
            "v": 10, "user": {**BOT.to_api(), "verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in mine],
            "session_id": session.id, "session_type": "normal", "resume_gateway_url": self.url,
            "application": {"id": str(APP_ID), "flags": 0}, "shard": [shard_id, count],
            "private_channels": [], "relationships": [], "presences": [],
            "guild_join_requests": [], "geo_ordered_rtc_regions": [], "_trace": ["fake"],
        })
        if session.intents & GUILDS_INTENT:
            for guild in mine:
                await self._send(session, "GUILD_CREATE", self._guild_create(guild, session))

    def _guild_create(self, guild: FakeGuild, session: GatewaySession) -> JSON:
        data = guild.guild_create()
        if not session.intents & MEMBERS_INTENT:  # without it Discord sends only the bot itself
            data["members"] = [guild.member_api(BOT)] if BOT in guild.users else []
        return data

    async def _resume(self, ws: web.WebSocketResponse, data: JSON) -> None:
        session = next((s for s in self.sessions if s.id == data.get("session_id")), None)
        if session is None or data.get("token") != self.token:
            await ws.send_json({"op": 9, "d": False})
            return
        session.ws = ws
        session.resumes += 1
        for event in session.sent:
            if event["s"] > int(data.get("seq") or 0):
                await ws.send_json(event)
        await self._send(session, "RESUMED", {"_trace": ["fake"]})

    async def _request_members(self, ws: web.WebSocketResponse, data: JSON) -> None:
        guild = next((g for g in self.guilds if str(g.id) == str(data.get("guild_id"))), None)
        session = next((s for s in self.sessions if s.ws is ws), None)
        if guild is None or session is None:
            return
        ids = {str(i) for i in data.get("user_ids") or []}
        query = (data.get("query") or "").lower()
        users = [u for u in guild.users
                 if (str(u.id) in ids if ids else u.name.lower().startswith(query))]
        limit = int(data.get("limit") or 0)
        members = [guild.member_api(u) for u in (users[:limit] if limit else users)]
        await self._send(session, "GUILD_MEMBERS_CHUNK", {
            "guild_id": str(guild.id), "members": members, "chunk_index": 0, "chunk_count": 1,
            "not_found": [], "nonce": data.get("nonce")})

    async def _send(self, session: GatewaySession, event: str, data: JSON) -> None:
        session.seq += 1
        frame = {"op": 0, "t": event, "s": session.seq, "d": data}
        session.sent.append(frame)
        if session.ws is not None and not session.ws.closed:
            # Text frames: discord.py only inflates binary ones, so ?compress= can be ignored.
            await session.ws.send_json(frame)

    async def dispatch(self, event: str, data: JSON) -> int:
        """Send a dispatch to the live session(s) owning its guild; returns how many got it."""
        gid = data.get("guild_id")
        targets = [s for s in self.live_sessions if s.owns(int(gid) if gid else None)]
        for session in targets:
            await self._send(session, event, data)
        return len(targets)

    async def send_op(self, op: int, data: object = None) -> None:
        """Send a raw opcode (7 RECONNECT, 9 INVALID_SESSION) to every live session."""
        for session in self.live_sessions:
            assert session.ws is not None
            await session.ws.send_json({"op": op, "d": data})

    async def close_all(self, code: int = 1001) -> None:
        for ws in list(self._sockets):
            await ws.close(code=code)
