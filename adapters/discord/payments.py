"""Buying credits with Discord premium SKUs: /buy, /paysupport, /terms and entitlements.

A purchase is an entitlement: it is granted (once, keyed by the entitlement id) and then
consumed. Entitlements arrive by ``on_entitlement_create`` and, at every start, by listing the
unconsumed ones, so a purchase made while the bot was down, or one whose consume failed, is
finished then. The rules live in ``bot.payments``; this module only translates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import discord
from discord import app_commands
from discord.ext import commands

from adapters.discord.interactions import Interaction, private
from adapters.discord.locale import text
from bot.app import App
from bot.errors import StorageUnavailable
from bot.i18n import t
from bot.models import UserRef
from bot.payments import pack_title

log = logging.getLogger(__name__)


class PaymentCommands(commands.Cog):
    """/buy, /paysupport and /terms, and new entitlements as they arrive."""

    def __init__(self, bot: discord.Client, app: App) -> None:
        self.bot = bot
        self.app = app

    @app_commands.command(name="buy", description=text("dc-cmd-buy"))
    async def buy(self, interaction: Interaction) -> None:
        packs = self.app.payments.offered("discord")  # raises when nothing is for sale
        view = discord.ui.View(timeout=None)
        for pack in packs:
            view.add_item(discord.ui.Button(sku_id=pack.discord_sku))
        lines = [t("dc-pack-line", title=pack_title(p), count=p.credits) for p in packs]
        await private(interaction, "\n".join([t("dc-buy-header"), *lines, t("dc-buy-footer")]),
                      view=view)

    @app_commands.command(name="paysupport", description=text("menu-paysupport"))
    async def support(self, interaction: Interaction) -> None:
        await private(interaction,
                      f"{t('dc-support-header')}\n{self.app.config.payments.support_text}")

    @app_commands.command(name="terms", description=text("menu-terms"))
    async def terms(self, interaction: Interaction) -> None:
        await private(interaction, f"{t('dc-terms-header')}\n{self.app.config.payments.terms_text}")

    async def cog_load(self) -> None:
        self.unconsumed = asyncio.create_task(self._unconsumed(),
                                              name="discord-unconsumed-purchases")

    async def _unconsumed(self) -> None:
        """Finish purchases made while the bot was down (or whose consume failed)."""
        await self.bot.wait_until_ready()
        skus = [discord.Object(sku) for sku in self.app.payments.sku_ids()]
        if not skus:
            return
        done = 0
        try:
            async for entitlement in self.bot.entitlements(limit=None, skus=skus,
                                                           exclude_ended=True):
                if not entitlement.consumed and await self.take(entitlement):
                    done += 1
        except discord.HTTPException as exc:
            log.error("listing entitlements failed (%s %s); retried at the next start",
                      exc.status, exc.code)
        except StorageUnavailable:  # logged by the grant; the entitlement stays unconsumed
            pass
        if done:
            log.info("finished %d discord purchase(s) left unconsumed", done)

    @commands.Cog.listener()
    async def on_entitlement_create(self, entitlement: discord.Entitlement) -> None:
        # A database down for good: logged by the grant; the next start lists it again.
        with contextlib.suppress(StorageUnavailable):
            await self.take(entitlement)

    async def take(self, entitlement: discord.Entitlement) -> bool:
        """Grant a purchased pack (once, ``Payments.take_entitlement``) and consume its
        entitlement; True once consumed."""
        if entitlement.user_id is None or entitlement.consumed or entitlement.deleted:
            return False
        buyer = UserRef("discord", str(entitlement.user_id))
        taken = await self.app.payments.take_entitlement(
            buyer, entitlement.sku_id, str(entitlement.id), is_test=entitlement.starts_at is None)
        if taken.thanks is not None:  # a DM outside any interaction: in the buyer's language
            note = taken.thanks.render(await self.app.preferences.language(buyer))
            user_id = entitlement.user_id
            try:
                await (self.bot.get_user(user_id) or await self.bot.fetch_user(user_id)).send(note)
            except discord.HTTPException as exc:  # DMs closed: /credits shows the purchase
                log.info("purchase note to %s not delivered: %s %s", user_id, exc.status,
                         exc.code)
        if not taken.consume:
            return False
        try:
            await entitlement.consume()
        except discord.HTTPException as exc:
            log.warning("consuming entitlement %s failed (%s %s); retried at the next start",
                        entitlement.id, exc.status, exc.code)
            return False
        return True

