"""Buying credits with Telegram Stars: /buy, the invoice, pre-checkout, the payment, /refund,
/paysupport and /terms. The rules live in ``bot.payments``; this module only translates."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    LabeledPrice,
    Message,
    PreCheckoutQuery,
    SuccessfulPayment,
)

from adapters.telegram.callbacks import BuyPack, button
from adapters.telegram.commands_admin import IsOwner
from adapters.telegram.commands_user import asker
from adapters.telegram.inputs import user_of
from adapters.telegram.replies import esc, markup, respond
from bot.app import App
from bot.errors import PaymentRefused
from bot.i18n import Msg, render, t
from bot.models import UserRef
from bot.payments import STARS, Refund, pack_title

log = logging.getLogger(__name__)
ALREADY_REFUNDED = "CHARGE_ALREADY_REFUNDED"


def make_router() -> Router:
    """A fresh router with the payment handlers (one dispatcher per router)."""
    router = Router(name="telegram-payments")
    router.message.register(buy, Command("buy"))
    router.message.register(policy_text, Command("paysupport", "terms"))
    router.message.register(refund, Command("refund"), IsOwner())
    router.callback_query.register(pack_pressed, BuyPack.filter())
    router.pre_checkout_query.register(pre_checkout)
    router.message.register(paid, F.successful_payment.as_("payment"))
    return router


async def buy(message: Message, app: App) -> None:
    asker(message)
    keyboard = InlineKeyboardMarkup(inline_keyboard=[[button(
        t("tg-pack-button", title=pack_title(p), stars=p.stars), BuyPack(pack_id=p.id))]
        for p in app.payments.offered("telegram")])
    await respond(message, f"{t('tg-buy-header')}\n{t('tg-buy-footer')}", keyboard)


async def pack_pressed(query: CallbackQuery, callback_data: BuyPack, bot: Bot, app: App) -> None:
    """A pack's button: an invoice for the presser, in the chat the button is in."""
    chat_id = query.message.chat.id if query.message else query.from_user.id
    invoice = app.payments.invoice(callback_data.pack_id, user_of(query.from_user))
    await bot.send_invoice(chat_id=chat_id, title=invoice.title,
                           description=invoice.description, payload=invoice.payload,
                           currency=STARS, provider_token="",
                           prices=[LabeledPrice(label=invoice.title, amount=invoice.price)])
    await query.answer(t("tg-invoice-sent"))


async def pre_checkout(query: PreCheckoutQuery, app: App) -> None:
    """Answered at once (Telegram waits 10 s): ok only for a pack on sale, bought by its payer;
    a refusal is answered by ``on_error``."""
    app.payments.check_checkout(query.invoice_payload, user_of(query.from_user),
                                query.currency, query.total_amount)
    await query.answer(ok=True)


async def paid(message: Message, payment: SuccessfulPayment, app: App) -> None:
    """The payment went through: grant the pack once, keyed by its charge id."""
    answer = await app.payments.take_stars(payment.invoice_payload, user_of(message.from_user),
                                           payment.telegram_payment_charge_id,
                                           payment.total_amount)
    if answer is not None:
        await message.answer(markup(answer))


async def policy_text(message: Message, command: CommandObject, app: App) -> None:
    """/paysupport and /terms: the operator's text under its title."""
    support = command.command == "paysupport"
    text = app.config.payments.support_text if support else app.config.payments.terms_text
    await respond(message, f"<b>{t('tg-support-header' if support else 'tg-terms-header')}</b>"
                  f"\n{esc(text)}")


async def refund(message: Message, command: CommandObject, bot: Bot, app: App) -> None:
    """Owners: give the Stars back, then take the pack's credits back and tell the buyer."""
    done = await app.payments.refund(command.args, "telegram", user_of(message.from_user),
                                     Msg("tg-refund-usage"), stars_giver(bot))
    purchase = done.purchase
    await tell_buyer(bot, app, done)
    await respond(message, t("tg-refunded", stars=purchase.price, charge=esc(purchase.charge_id),
                             count=purchase.credits, pack=esc(purchase.pack_id),
                             balance=done.balance))


def stars_giver(bot: Bot) -> Callable[[UserRef, str], Awaitable[None]]:
    """``Payments.refund``'s step at Telegram: the Stars of one charge back to the buyer."""
    async def give_stars_back(buyer: UserRef, charge: str) -> None:
        try:
            await bot.refund_star_payment(user_id=int(buyer.id), telegram_payment_charge_id=charge)
        except TelegramBadRequest as exc:
            # Refunded at Telegram but not here (a crash in between): record it now.
            if ALREADY_REFUNDED not in exc.message:
                raise PaymentRefused(msg=Msg("tg-refund-refused", {
                    "reason": exc.message.removeprefix("Bad Request: ")})) from exc

    return give_stars_back


async def tell_buyer(bot: Bot, app: App, done: Refund) -> None:
    """The buyer learns of the refund in their own language (not the owner's)."""
    purchase, buyer = done.purchase, UserRef.parse(done.purchase.user_key)
    try:
        locale = await app.locale_for(buyer, None, None)
        await bot.send_message(int(buyer.id), render(
            "tg-buyer-told", locale, count=purchase.credits, stars=purchase.price,
            balance=done.balance))
    except TelegramAPIError as exc:  # blocked the bot: the owner's answer still says it all
        log.info("refund notice to %s not delivered: %s", buyer.key, exc)
