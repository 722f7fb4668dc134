"""Buying credits with Telegram Stars: /buy, the invoice, pre-checkout, the payment, /refund,
/paysupport and /terms. The rules live in ``bot.payments``; this module only translates."""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LabeledPrice,
    Message,
    PreCheckoutQuery,
)

from adapters.telegram import payment_texts as texts
from adapters.telegram.commands_admin import owner
from adapters.telegram.commands_user import asker, respond, user_ref
from adapters.telegram.replies import answer_error, esc, reply_error
from bot.app import App
from bot.errors import BotError, OptionError, PaymentRefused, StorageUnavailable
from bot.models import UserRef
from bot.payments import STARS, pack_title

log = logging.getLogger(__name__)
ALREADY_REFUNDED = "CHARGE_ALREADY_REFUNDED"


class BuyPack(CallbackData, prefix="buy"):
    """The button under /buy for one pack."""

    pack_id: str


def make_router() -> Router:
    """A fresh router with the payment handlers (one dispatcher per router)."""
    router = Router(name="telegram-payments")
    router.message.register(buy, Command("buy"))
    router.message.register(support, Command("paysupport"))
    router.message.register(terms, Command("terms"))
    router.message.register(refund, Command("refund"))
    router.callback_query.register(pack_pressed, BuyPack.filter())
    router.pre_checkout_query.register(pre_checkout)
    router.message.register(paid, F.successful_payment)
    router.message.register(refunded_notice, F.refunded_payment)
    return router


async def buy(message: Message, app: App) -> None:
    if await asker(message) is None:
        return
    try:
        packs = app.payments.offered("telegram")
    except BotError as exc:
        await reply_error(message, exc)
        return
    keyboard = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
        text=texts.PACK_BUTTON.format(title=pack_title(p), stars=p.stars),
        callback_data=BuyPack(pack_id=p.id).pack())] for p in packs])
    await respond(message, f"{texts.BUY_HEADER}\n{texts.BUY_FOOTER}", keyboard)


async def pack_pressed(query: CallbackQuery, callback_data: BuyPack, bot: Bot, app: App) -> None:
    """A pack's button: an invoice for the presser, in the chat the button is in."""
    chat_id = query.message.chat.id if query.message else query.from_user.id
    try:
        invoice = app.payments.invoice(callback_data.pack_id, user_ref(query.from_user))
    except BotError as exc:
        await answer_error(query, exc)
        return
    await bot.send_invoice(chat_id=chat_id, title=invoice.title,
                           description=invoice.description, payload=invoice.payload,
                           currency=STARS, provider_token="",
                           prices=[LabeledPrice(label=invoice.title, amount=invoice.price)])
    await query.answer(texts.INVOICE_SENT)


async def pre_checkout(query: PreCheckoutQuery, app: App) -> None:
    """Answered at once (Telegram waits 10 s): ok only for a pack on sale, bought by its payer."""
    try:
        app.payments.check_checkout(query.invoice_payload, user_ref(query.from_user),
                                    query.currency, query.total_amount)
    except BotError as exc:
        await query.answer(ok=False, error_message=exc.user_message)
        return
    await query.answer(ok=True)


async def paid(message: Message, app: App) -> None:
    """The payment went through: grant the pack once, keyed by its charge id."""
    payment = message.successful_payment
    assert payment is not None and message.from_user is not None  # the filter and Telegram
    buyer = user_ref(message.from_user)
    details = app.payments.read_payload(payment.invoice_payload)
    if details is None:  # not an invoice of ours: nothing to grant, but say so in the log
        log.error("payment %s has an unknown payload", payment.telegram_payment_charge_id)
        return
    charge = payment.telegram_payment_charge_id
    try:
        outcome = await app.payments.grant(app.payments.stars_purchase(
            details, buyer, charge, payment.total_amount))
    except StorageUnavailable:  # logged with everything needed to grant it by hand
        await message.answer(texts.NOT_RECORDED.format(charge=esc(charge)), parse_mode="HTML")
        return
    if not outcome.granted:
        await message.answer(texts.ALREADY_GRANTED.format(balance=outcome.balance))
        return
    await message.answer(texts.THANKS.format(credits=details.credits, balance=outcome.balance,
                                             charge=esc(charge)), parse_mode="HTML")


async def refunded_notice(message: Message) -> None:
    """Telegram's own note about a refund: the /refund command already told the buyer."""


async def support(message: Message, app: App) -> None:
    await respond(message, f"{texts.SUPPORT_HEADER}\n{esc(app.config.payments.support_text)}")


async def terms(message: Message, app: App) -> None:
    await respond(message, f"{texts.TERMS_HEADER}\n{esc(app.config.payments.terms_text)}")


def refund_args(args: str | None) -> tuple[str, bool]:
    words = (args or "").split()
    force = "--force" in words
    rest = [w for w in words if w != "--force"]
    if len(rest) != 1:
        raise OptionError(texts.REFUND_USAGE)
    return rest[0], force


async def refund(message: Message, command: CommandObject, bot: Bot, app: App) -> None:
    """Owners: give the Stars back, then take the pack's credits back and tell the buyer."""
    by = await owner(message, app)
    if by is None:
        return
    try:
        charge, force = refund_args(command.args)
        purchase = await app.payments.refundable(charge, "telegram", force=force)
        buyer = UserRef.parse(purchase.user_key)
        try:
            await bot.refund_star_payment(user_id=int(buyer.id),
                                          telegram_payment_charge_id=charge)
        except TelegramBadRequest as exc:
            # Refunded at Telegram but not here (a crash in between): record it now.
            if ALREADY_REFUNDED not in exc.message:
                raise PaymentRefused(texts.REFUND_REFUSED_BY_TELEGRAM.format(
                    reason=exc.message.removeprefix("Bad Request: "))) from exc
        done = await app.payments.record_refund(purchase, by)
    except BotError as exc:
        await reply_error(message, exc)
        return
    try:
        await bot.send_message(int(buyer.id), texts.BUYER_TOLD.format(
            credits=purchase.credits, stars=purchase.price, balance=done.balance))
    except TelegramAPIError as exc:  # blocked the bot: the owner's answer still says it all
        log.info("refund notice to %s not delivered: %s", buyer.key, exc)
    await respond(message, texts.REFUNDED.format(
        stars=purchase.price, charge=esc(charge), credits=purchase.credits,
        pack=esc(purchase.pack_id), balance=done.balance))

