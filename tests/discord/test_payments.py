"""Buying credits with Discord SKUs, end to end: real discord.py against the fake Discord."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from bot.config import Config
from tests.discord.conftest import bot_config, started
from tests.discord.helpers import ledger, user_ref
from tests.fakes import discord_payloads as p
from tests.fakes.a1111 import FakeA1111
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_model import FakeMessage
from tests.fakes.discord_world import ADMIN, MEMBER, OWNER, FakeUser, dm_channel
from tests.texts import en, pattern

SKU = 1_300_000_000_000_000_001
OTHER_SKU = 1_300_000_000_000_000_002
PACKS = [{"id": "small", "credits": 100, "discord_sku": SKU, "discord_price_cents": 199},
         {"id": "stars-only", "credits": 5, "stars": 10}]
MEMBER_REF = user_ref(MEMBER)
THANKS = en("dc-thanks", count=100, balance=120)


def shop_config(tmp_path: Path, fake: FakeDiscord, a1111: FakeA1111, **payments: Any) -> Config:
    return bot_config(tmp_path / "bot.db", fake, a1111,
                      payments={"enabled": True, "packs": PACKS, **payments})


async def reply(fake: FakeDiscord, command: str, user: FakeUser = MEMBER) -> FakeMessage:
    rec = await fake.inject_interaction(p.slash_command(command, user=user))
    return await fake.wait_for(lambda: fake.original(rec.token))


def thanks(fake: FakeDiscord, user: FakeUser = MEMBER) -> list[str]:
    return [m.content for m in fake.channel_messages(dm_channel(user).id)]


async def purchases(app: App) -> int:
    return [kind for kind, _ in await ledger(app)].count("purchase")


async def test_buy_shows_one_premium_button_per_pack(tmp_path: Path, fake: FakeDiscord,
                                                     a1111: FakeA1111) -> None:
    async with started(fake, shop_config(tmp_path, fake, a1111)):
        shown = await reply(fake, "buy")
        assert shown.ephemeral
        assert shown.content.splitlines()[1] == en("dc-pack-line", title="100 credits", count=100)
        [button] = shown.buttons
        assert button["style"] == 6 and int(button["sku_id"]) == SKU
        assert "custom_id" not in button and "label" not in button
        support = await reply(fake, "paysupport")
        assert "charge id" in support.content
        terms = await reply(fake, "terms")
        assert "no cash value" in terms.content


async def test_a_purchase_grants_once_and_is_consumed(tmp_path: Path, fake: FakeDiscord,
                                                      a1111: FakeA1111) -> None:
    async with started(fake, shop_config(tmp_path, fake, a1111)) as (app, _):
        entitlement = await fake.shop.buy(MEMBER, SKU)
        await fake.wait_for(lambda: fake.shop.consumed(entitlement))
        await fake.wait_for(lambda: thanks(fake) == [THANKS])
        await fake.dispatch("ENTITLEMENT_CREATE", dict(entitlement, consumed=False))
        await fake.wait_for(lambda: len(fake.shop.consume_calls) == 2)
        assert await ledger(app) == [("initial", 20), ("purchase", 100)]
        assert thanks(fake) == [THANKS]
        assert await app.storage.drift() == []

        shown = await reply(fake, "credits")
        assert f"+100 {en('ledger-purchase', pack='small')}" in shown.content
        stats = await reply(fake, "stats", user=OWNER)
        assert pattern("revenue-day", where=en("revenue-skus"), purchases=1, credits=100,
                       money="$1.99").search(stats.content)


async def test_a_purchase_made_while_the_bot_was_down_is_granted_at_start(
        tmp_path: Path, fake: FakeDiscord, a1111: FakeA1111) -> None:
    entitlement = fake.shop.add(MEMBER, SKU)
    other = fake.shop.add(ADMIN, OTHER_SKU)  # no pack sells it: left alone
    async with started(fake, shop_config(tmp_path, fake, a1111)) as (app, _):
        await fake.wait_for(lambda: fake.shop.consumed(entitlement))
        assert await ledger(app) == [("initial", 20), ("purchase", 100)]
        assert not fake.shop.consumed(other)
        assert fake.shop.list_calls[0]["sku_ids"] == str(SKU)


async def test_a_consume_that_fails_is_retried_at_the_next_start(
        tmp_path: Path, fake: FakeDiscord, a1111: FakeA1111) -> None:
    config = shop_config(tmp_path, fake, a1111)
    fault = fake.fail_next("POST", r"/entitlements/\d+/consume$", 503)
    async with started(fake, config) as (app, _):
        entitlement = await fake.shop.buy(MEMBER, SKU)
        await fake.wait_for(lambda: fault.hits == 1)
        await fake.wait_for(lambda: thanks(fake) == [THANKS])
        assert not fake.shop.consumed(entitlement)
        assert await ledger(app) == [("initial", 20), ("purchase", 100)]
    async with started(fake, config) as (app, _):
        await fake.wait_for(lambda: fake.shop.consumed(entitlement))
        assert await ledger(app) == [("initial", 20), ("purchase", 100)]
        assert thanks(fake) == [THANKS]  # thanked once, when the grant was new
        assert await app.storage.drift() == []


async def test_test_entitlements_count_only_when_discord_test_is_on(
        tmp_path: Path, fake: FakeDiscord, a1111: FakeA1111) -> None:
    async with started(fake, shop_config(tmp_path, fake, a1111)) as (app, _):
        test = await fake.shop.buy(MEMBER, SKU, test=True)
        real = await fake.shop.buy(MEMBER, SKU)  # events are handled in order: a barrier
        await fake.wait_for(lambda: fake.shop.consumed(real))
        assert not fake.shop.consumed(test)
        assert await purchases(app) == 1
    async with started(fake, shop_config(tmp_path, fake, a1111, discord_test=True)) as (app, _):
        await fake.wait_for(lambda: fake.shop.consumed(test))
        assert await purchases(app) == 2
        assert await app.storage.drift() == []


async def test_a_grant_that_cannot_commit_is_retried_and_granted_once(
        tmp_path: Path, fake: FakeDiscord, a1111: FakeA1111,
        caplog: pytest.LogCaptureFixture) -> None:
    async with started(fake, shop_config(tmp_path, fake, a1111)) as (app, _):
        await app.service.credits.balance(MEMBER_REF)
        # Another program holds the database's write lock for longer than the busy timeout.
        blocker = sqlite3.connect(tmp_path / "bot.db", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            entitlement = await fake.shop.buy(MEMBER, SKU)
            await fake.wait_for(lambda: "retrying" in caplog.text, timeout=15)
            assert not fake.shop.consume_calls
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await fake.wait_for(lambda: fake.shop.consumed(entitlement), timeout=15)
        assert await ledger(app) == [("initial", 20), ("purchase", 100)]
        assert await app.storage.drift() == []
