"""Discord monetization on the fake: entitlements, ENTITLEMENT_CREATE, listing and consuming.

Follows https://discord.com/developers/docs/resources/entitlement: a purchase of a SKU creates
an entitlement (``type`` 1 PURCHASE with ``starts_at``; a test entitlement has neither
``starts_at`` nor ``ends_at``), announced by the gateway's ``ENTITLEMENT_CREATE`` and listed by
``GET /applications/{app}/entitlements`` (``user_id``, ``sku_ids``, ``before``/``after``,
``limit`` 1-100, ``exclude_ended``, ``exclude_deleted``). ``POST .../entitlements/{id}/consume``
answers 204 and sets ``consumed``; consuming again is also answered 204 here.

Test-facing (``fake.shop``): ``add(user, sku)`` while the bot is away, ``await buy(user, sku)``
(adds and dispatches), ``consumed(id)``, ``consume_calls``, ``hold_consumes()`` /
``release_consumes()`` (a consume that never answers, then is lost: for crash tests).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from tests.fakes.discord_world import APP_ID, JSON, FakeUser, iso_now, snowflake
from tests.fakes.server import json_response

if TYPE_CHECKING:
    from tests.fakes.discord_api import FakeDiscord

PURCHASE, TEST_MODE_PURCHASE = 1, 4
UNKNOWN_ENTITLEMENT = {"message": "Unknown Entitlement", "code": 10069}
MAX_LIMIT = 100


def _flag(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.lower() in ("1", "true")


class Shop:
    """The application's entitlements and the routes that list and consume them."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.entitlements: dict[int, JSON] = {}
        self.consume_calls: list[int] = []
        self.list_calls: list[dict[str, str]] = []
        self._held: asyncio.Event | None = None

    def add_to(self, app: web.Application, p: str) -> None:
        r = app.router
        r.add_get(p + "/applications/{app}/entitlements", self.list_)
        r.add_get(p + "/applications/{app}/entitlements/{eid}", self.get)
        r.add_post(p + "/applications/{app}/entitlements/{eid}/consume", self.consume)

    # -- acting as Discord ----------------------------------------------------------------------
    def add(self, user: FakeUser, sku_id: int, *, test: bool = False) -> JSON:
        """``user`` buys ``sku_id``; nothing is dispatched (the bot may be down)."""
        entitlement: JSON = {
            "id": str(snowflake()), "sku_id": str(sku_id), "application_id": str(APP_ID),
            "user_id": str(user.id), "type": TEST_MODE_PURCHASE if test else PURCHASE,
            "deleted": False, "consumed": False, "gift_code_flags": 0, "promotion_id": None}
        if not test:
            entitlement.update(starts_at=iso_now(), ends_at=None)
        self.entitlements[int(entitlement["id"])] = entitlement
        return entitlement

    async def buy(self, user: FakeUser, sku_id: int, *, test: bool = False) -> JSON:
        """``user`` buys ``sku_id`` while the bot is connected: ENTITLEMENT_CREATE follows."""
        entitlement = self.add(user, sku_id, test=test)
        await self.fake.dispatch("ENTITLEMENT_CREATE", dict(entitlement))
        return entitlement

    def consumed(self, entitlement: JSON | int) -> bool:
        eid = entitlement if isinstance(entitlement, int) else int(entitlement["id"])
        return bool(self.entitlements[eid]["consumed"])

    def hold_consumes(self) -> None:
        """From now on a consume request is taken but never answered (until released)."""
        self._held = asyncio.Event()

    def release_consumes(self) -> None:
        """Held consume requests end with 503 and are not applied; new ones work again."""
        if self._held is not None:
            self._held.set()
            self._held = None

    # -- routes ---------------------------------------------------------------------------------
    def _mine(self, request: web.Request) -> bool:
        return request.match_info["app"] == str(APP_ID)

    async def list_(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.list_calls.append(query)
        if not self._mine(request):
            return json_response([])
        try:
            limit = int(query.get("limit", MAX_LIMIT))
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            return json_response({"message": "Invalid Form Body", "code": 50035}, 400)
        skus = set(query["sku_ids"].split(",")) if query.get("sku_ids") else None
        found = sorted(self.entitlements.values(), key=lambda e: int(e["id"]))
        found = [e for e in found
                 if (skus is None or e["sku_id"] in skus)
                 and query.get("user_id") in (None, e["user_id"])
                 and query.get("guild_id") in (None, e.get("guild_id"))
                 and not (_flag(query.get("exclude_deleted"), True) and e["deleted"])
                 and not (_flag(query.get("exclude_ended"), False) and e.get("ends_at"))]
        if "before" in query:
            found = [e for e in found if int(e["id"]) < int(query["before"])][-limit:]
        else:
            after = int(query.get("after", 0))
            found = [e for e in found if int(e["id"]) > after][:limit]
        return json_response(found)

    async def get(self, request: web.Request) -> web.Response:
        entitlement = self.entitlements.get(int(request.match_info["eid"]))
        if entitlement is None or not self._mine(request):
            return json_response(UNKNOWN_ENTITLEMENT, 404)
        return json_response(entitlement)

    async def consume(self, request: web.Request) -> web.Response:
        eid = int(request.match_info["eid"])
        self.consume_calls.append(eid)
        await self.fake._notify()
        entitlement = self.entitlements.get(eid)
        if entitlement is None or not self._mine(request):
            return json_response(UNKNOWN_ENTITLEMENT, 404)
        if self._held is not None:
            await self._held.wait()
            return json_response({"message": "503: Service Unavailable", "code": 0}, 503)
        entitlement["consumed"] = True
        return web.Response(status=204)
