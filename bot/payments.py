"""Buying credits: packs for sale, checkout checks, exactly-once grants, refunds, revenue.

Adapters translate platform payments into these calls: Telegram's invoice payload and
``telegram_payment_charge_id``, Discord's SKU and entitlement id. Every grant and refund is a
ledger row committed with its balance change, keyed by the platform's charge id, so a payment
delivered twice (or retried after a crash) grants once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from babel.numbers import format_currency

from bot.config import PackConfig, PaymentsConfig
from bot.credits import Credits
from bot.errors import OptionError, PaymentRefused, StorageUnavailable
from bot.i18n import Msg, current_locale, number, t
from bot.models import UserRef
from storage.base import PurchaseOutcome, PurchaseRecord, RevenueDay, Storage

log = logging.getLogger(__name__)

PAYLOAD_PREFIX = "buy1"
STARS = "XTR"
# A database outage is retried for about a minute (0.25 s doubling, 9 tries): Telegram does
# not deliver a payment again once the bot took the update.
GRANT_ATTEMPTS = 9
GRANT_FIRST_DELAY = 0.25


@dataclass(frozen=True, slots=True)
class Invoice:
    """What a platform's invoice shows, and the payload it carries back to the bot."""

    pack: PackConfig
    title: str
    description: str
    payload: str
    price: int


@dataclass(frozen=True, slots=True)
class PaidPack:
    """A payload read back: which pack, for whom, at what price (as offered then)."""

    pack_id: str
    credits: int
    price: int
    user_id: str


@dataclass(frozen=True, slots=True)
class SkuGrant:
    """An entitlement taken: whether to consume it, and the thanks owed the buyer (once)."""

    consume: bool
    thanks: Msg | None = None


@dataclass(frozen=True, slots=True)
class Refund:
    """A refund recorded: the purchase, and the buyer's balance after it."""

    purchase: PurchaseRecord
    balance: int


def pack_title(pack: PackConfig) -> str:
    return pack.title or f"{pack.credits} credits"


class Payments:
    """The use cases of buying credits; platform-neutral (adapters do the platform calls)."""

    def __init__(self, config: PaymentsConfig, storage: Storage, credits: Credits) -> None:
        self.config = config
        self.storage = storage
        self.credits = credits

    # -- what is for sale ----------------------------------------------------------------------
    def packs(self, platform: str) -> list[PackConfig]:
        """Packs on sale on ``platform`` (empty when payments are off)."""
        if not self.config.enabled:
            return []
        if platform == "telegram":
            return [p for p in self.config.packs if p.stars is not None]
        if platform == "discord":
            return [p for p in self.config.packs if p.discord_sku is not None]
        return []

    def offered(self, platform: str) -> list[PackConfig]:
        """Like ``packs`` but refuses with a sentence when nothing is for sale."""
        packs = self.packs(platform)
        if not packs:
            raise PaymentRefused(msg=Msg("pay-error-not-offered"))
        return packs

    def pack(self, platform: str, pack_id: str) -> PackConfig:
        found = next((p for p in self.packs(platform) if p.id == pack_id), None)
        if found is None:
            raise PaymentRefused(msg=Msg("pay-error-pack-gone"))
        return found

    def pack_for_sku(self, sku_id: int) -> PackConfig | None:
        """The pack a SKU sells, even with sales switched off: a paid SKU is always granted."""
        return next((p for p in self.config.packs if p.discord_sku == sku_id), None)

    # -- Telegram Stars -----------------------------------------------------------------------
    def invoice(self, pack_id: str, buyer: UserRef) -> Invoice:
        """The Stars invoice for one pack; its payload names the pack, price and buyer."""
        pack = self.pack("telegram", pack_id)
        assert pack.stars is not None  # packs("telegram") has only priced packs
        payload = f"{PAYLOAD_PREFIX}:{pack.id}:{pack.credits}:{pack.stars}:{buyer.id}"
        return Invoice(pack, pack_title(pack),
                       f"{pack.credits} credits for making images with this bot.",
                       payload, pack.stars)

    @staticmethod
    def read_payload(payload: str) -> PaidPack | None:
        parts = payload.split(":")
        if len(parts) != 5 or parts[0] != PAYLOAD_PREFIX:
            return None
        _, pack_id, credits, price, user_id = parts
        if not (credits.isdigit() and price.isdigit()):
            return None
        return PaidPack(pack_id, int(credits), int(price), user_id)

    def check_checkout(self, payload: str, payer: UserRef, currency: str,
                       total: int) -> PaidPack:
        """Whether a Telegram pre-checkout may go ahead; raises ``PaymentRefused`` if not."""
        paid = self.read_payload(payload)
        if paid is None:
            raise PaymentRefused(msg=Msg("pay-error-foreign-invoice"))
        if not self.config.enabled:
            raise PaymentRefused(msg=Msg("pay-error-off"))
        if paid.user_id != payer.id:
            raise PaymentRefused(msg=Msg("pay-error-not-yours"))
        pack = self.pack("telegram", paid.pack_id)
        if currency != STARS or total != pack.stars or paid.credits != pack.credits:
            raise PaymentRefused(msg=Msg("pay-error-price-changed"))
        return paid

    # -- granting -----------------------------------------------------------------------------
    async def grant(self, purchase: PurchaseRecord) -> PurchaseOutcome:
        """Record a paid pack exactly once (by charge id); a database outage is retried.

        A buyer new to the bot gets the welcome grant first, so the balance they are shown
        is the one they will have. Retrying cannot grant twice: the charge id is unique.
        """
        delay = GRANT_FIRST_DELAY
        attempt = 1
        while True:
            try:
                await self.credits.ensure(UserRef.parse(purchase.user_key))
                outcome = await self.storage.record_purchase(purchase)
                break
            except StorageUnavailable as exc:
                if attempt == GRANT_ATTEMPTS:
                    log.error("purchase %s NOT recorded (%s gets pack %s, %d credits): %s",
                              purchase.charge_id, purchase.user_key, purchase.pack_id,
                              purchase.credits, exc.detail)
                    raise
                log.warning("recording purchase %s failed; retrying in %.1f s",
                            purchase.charge_id, delay)
                await asyncio.sleep(delay)
                delay, attempt = delay * 2, attempt + 1
        if outcome.granted:
            log.info("purchase %s: %s got pack %s (%d credits)", purchase.charge_id,
                     purchase.user_key, purchase.pack_id, purchase.credits)
        return outcome

    def stars_purchase(self, paid: PaidPack, buyer: UserRef, charge_id: str,
                       total: int) -> PurchaseRecord:
        """The record of a Stars payment: what its payload promised, whatever the config is now."""
        return PurchaseRecord(charge_id=charge_id, platform="telegram", user_key=buyer.key,
                              pack_id=paid.pack_id, credits=paid.credits, currency=STARS,
                              price=total)

    async def take_stars(self, payload: str, buyer: UserRef, charge_id: str,
                         total: int) -> Msg | None:
        """Grant the pack a Stars payment bought, once (keyed by its charge id), and say so to
        the buyer; None for a payload that is not ours (logged: nothing to grant)."""
        paid = self.read_payload(payload)
        if paid is None:
            log.error("payment %s has an unknown payload", charge_id)
            return None
        try:
            outcome = await self.grant(self.stars_purchase(paid, buyer, charge_id, total))
        except StorageUnavailable:  # logged with everything needed to grant it by hand
            return Msg("tg-not-recorded", {"charge": charge_id})
        if not outcome.granted:
            return Msg("tg-already-granted", {"count": outcome.balance})
        return Msg("tg-thanks", {"count": paid.credits, "balance": outcome.balance,
                                 "charge": charge_id})

    def sku_purchase(self, pack: PackConfig, buyer: UserRef, entitlement_id: str,
                     ) -> PurchaseRecord:
        return PurchaseRecord(charge_id=entitlement_id, platform="discord", user_key=buyer.key,
                              pack_id=pack.id, credits=pack.credits, currency="USD",
                              price=pack.discord_price_cents or 0)

    def counts_entitlement(self, is_test: bool) -> bool:
        """Test entitlements (no start date) count only with ``discord_test = true``."""
        return self.config.discord_test or not is_test

    def sku_ids(self) -> list[int]:
        """Every SKU a pack sells, sales on or off: each is granted when bought."""
        return [p.discord_sku for p in self.config.packs if p.discord_sku]

    async def take_entitlement(self, buyer: UserRef, sku_id: int, entitlement_id: str, *,
                               is_test: bool) -> SkuGrant:
        """Grant the pack a Discord entitlement bought, once (keyed by its id).

        A test entitlement that does not count, or one for a SKU no pack sells, is left
        unconsumed; a grant made before (a re-delivery) is consumed without a second thanks.
        """
        if not self.counts_entitlement(is_test):
            log.info("test entitlement %s ignored ([payments] discord_test is off)",
                     entitlement_id)
            return SkuGrant(consume=False)
        pack = self.pack_for_sku(sku_id)
        if pack is None:
            log.warning("entitlement %s is for SKU %s, which no pack sells; left unconsumed",
                        entitlement_id, sku_id)
            return SkuGrant(consume=False)
        outcome = await self.grant(self.sku_purchase(pack, buyer, entitlement_id))
        thanks = Msg("dc-thanks", {"count": pack.credits, "balance": outcome.balance})
        return SkuGrant(consume=True, thanks=thanks if outcome.granted else None)

    # -- refunds ------------------------------------------------------------------------------
    async def refundable(self, charge_id: str, platform: str, *, force: bool) -> PurchaseRecord:
        """The purchase behind ``charge_id`` if it may be refunded; otherwise says why not.

        A pack the buyer has already spent part of is refused unless ``force``: then its full
        amount is taken back and the balance may end below zero, by at most that pack.
        """
        purchase = await self.storage.get_purchase(charge_id)
        if purchase is None or purchase.platform != platform:
            raise PaymentRefused(msg=Msg("pay-error-no-purchase", {"charge": charge_id[:64]}))
        if purchase.refunded_at is not None:
            raise PaymentRefused(msg=Msg("pay-error-refunded"))
        balance = await self.storage.balance(purchase.user_key) or 0
        if balance < purchase.credits and not force:
            spent = purchase.credits - max(balance, 0)
            raise PaymentRefused(msg=Msg("pay-error-spent",
                                         {"spent": spent, "credits": purchase.credits}))
        return purchase

    async def record_refund(self, purchase: PurchaseRecord, by: UserRef) -> Refund:
        """Take the refunded pack back (once); called after the platform refunded the money."""
        balance = await self.storage.refund_purchase(
            purchase.charge_id, f"pack {purchase.pack_id} refunded by {by.key}")
        if balance is None:
            raise PaymentRefused(msg=Msg("pay-error-refunded"))
        log.info("purchase %s refunded by %s", purchase.charge_id, by.key)
        return Refund(purchase, balance)

    async def refund(self, args: str | None, platform: str, by: UserRef, usage: Msg,
                     give_back: Callable[[UserRef, str], Awaitable[None]]) -> Refund:
        """An owner's refund, ``CHARGE_ID [--force]`` (``usage`` otherwise): ``give_back(buyer,
        charge_id)`` returns the money on the platform, then the pack's credits are taken back."""
        words = (args or "").split()
        charge = [w for w in words if w != "--force"]
        if len(charge) != 1:
            raise OptionError(msg=usage)
        purchase = await self.refundable(charge[0], platform, force="--force" in words)
        await give_back(UserRef.parse(purchase.user_key), purchase.charge_id)
        return await self.record_refund(purchase, by)

    # -- statistics ---------------------------------------------------------------------------
    async def revenue(self, days: int = 7) -> list[RevenueDay]:
        return await self.storage.revenue(time.time() - days * 86400)


def revenue_lines(days: list[RevenueDay]) -> list[str]:
    """Revenue per day as short lines, newest first: Stars and Discord SKU sales."""
    lines = []
    for day in days:
        stars = day.currency == STARS
        money = (f"{number(day.price)} ⭐" if stars
                 else format_currency(day.price / 100, "USD", locale=current_locale.get())
                 if day.price else t("revenue-no-price"))
        line = t("revenue-day", day=day.day, where=t("revenue-stars" if stars else "revenue-skus"),
                 purchases=day.purchases, credits=day.credits, money=money)
        lines.append(line + (t("revenue-refunded", refunded=day.refunded) if day.refunded else ""))
    return lines or [t("revenue-none")]
