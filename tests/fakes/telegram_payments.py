"""Telegram Stars on the fake Bot API: invoices, the pre-checkout round trip, payments, refunds.

Follows https://core.telegram.org/bots/payments-stars: ``sendInvoice`` with currency ``XTR``,
an empty ``provider_token`` and exactly one price; Telegram then sends the bot a
``pre_checkout_query`` that must be answered (``answerPreCheckoutQuery``) within 10 seconds;
after the user pays, a message with ``successful_payment`` carrying the
``telegram_payment_charge_id``; ``refundStarPayment`` gives the Stars back and Telegram
posts a ``refunded_payment`` service message.

Test-facing: ``await fake.pay(invoice, user_id)`` plays the buyer (returns a ``Payment``),
``fake.invoices(chat_id)``, ``fake.checkout_answers``, ``fake.charges``,
``fake.payment_update(payment)`` for re-deliveries.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

from tests.fakes.telegram_model import Params, SentMessage, api_method, bad_request

CHECKOUT_DEADLINE = 10.0  # seconds Telegram waits for answerPreCheckoutQuery
_CHARGES = itertools.count(1)


@dataclass
class Charge:
    """A Stars payment Telegram holds; ``refunded`` once refundStarPayment took it back."""

    charge_id: str
    user_id: int
    chat_id: int
    amount: int
    payload: str
    refunded: bool = False


@dataclass
class Payment:
    """How one attempt to pay went: the bot's pre-checkout answer and, if paid, the charge."""

    answer: dict[str, Any]
    charge: Charge | None
    update: dict[str, Any] | None  # the successful_payment update, for re-deliveries


class PaymentMethods:
    """Mixin of the fake server (``FakeTelegram``): the payment methods and the buyer's side.

    It uses the server's chats, messages and update queue (``ChatState``, ``FakeTelegram``).
    """

    checkout_answers: list[dict[str, Any]]
    charges: dict[str, Charge]
    _open_checkouts: dict[str, float]

    def init_payments(self) -> None:
        self.checkout_answers = []
        self.charges = {}
        self._open_checkouts = {}

    # -- methods ------------------------------------------------------------------------
    @api_method("sendInvoice")
    async def send_invoice(self, p: Params) -> Any:
        chat_id = self.target_chat(p.get("chat_id"))
        title, description, payload = (str(p.get(k, "")) for k in (
            "title", "description", "payload"))
        if not 1 <= len(title) <= 32:
            raise bad_request("INVOICE_TITLE_EMPTY" if not title else "title is too long")
        if not 1 <= len(description) <= 255:
            raise bad_request("INVOICE_DESCRIPTION_EMPTY" if not description
                              else "description is too long")
        if not 1 <= len(payload.encode()) <= 128:
            raise bad_request("INVOICE_PAYLOAD_INVALID")
        currency = p.get("currency")
        prices = p.get("prices")
        if not isinstance(prices, list) or not prices:
            raise bad_request("can't parse prices JSON object")
        if currency == "XTR":
            if p.get("provider_token"):
                raise bad_request("PAYMENT_PROVIDER_INVALID")  # Stars take no provider
            if len(prices) != 1:
                raise bad_request("STARS_INVOICE_INVALID")  # exactly one price in Stars
        elif not p.get("provider_token"):
            raise bad_request("PAYMENT_PROVIDER_INVALID")
        total = 0
        for price in prices:
            amount = price.get("amount") if isinstance(price, dict) else None
            if not isinstance(price, dict) or not price.get("label") or not isinstance(
                    amount, int) or amount <= 0:
                raise bad_request("CURRENCY_TOTAL_AMOUNT_INVALID")
            total += amount
        invoice = {"title": title, "description": description, "start_parameter": "",
                   "currency": currency, "total_amount": total, "payload": payload}
        msg = self._new_invoice(chat_id, p, invoice)
        return self.message_json(msg)

    def _new_invoice(self, chat_id: int, p: Params, invoice: dict[str, Any]) -> SentMessage:
        msg = SentMessage(chat_id, self.next_message_id(chat_id),
                          "invoice", invoice["title"],
                          reply_to_message_id=self._reply_to(p, chat_id),
                          reply_markup=self._markup(p),
                          invoice=invoice)
        self.store_message(msg)
        return msg

    @api_method("answerPreCheckoutQuery")
    async def answer_pre_checkout_query(self, p: Params) -> Any:
        query_id = str(p.get("pre_checkout_query_id", ""))
        opened = self._open_checkouts.pop(query_id, None)
        if opened is None or time.monotonic() - opened > CHECKOUT_DEADLINE:
            raise bad_request("query is too old and response timeout expired or query ID is "
                              "invalid")
        ok = p.get("ok")
        if not isinstance(ok, bool):
            raise bad_request("parameter \"ok\" is required")
        if not ok and not p.get("error_message"):
            raise bad_request("ERROR_MESSAGE_EMPTY")
        self.checkout_answers.append({"pre_checkout_query_id": query_id, "ok": ok,
                                      "error_message": p.get("error_message")})
        return True

    @api_method("refundStarPayment")
    async def refund_star_payment(self, p: Params) -> Any:
        user_id = p.require_int("user_id", "user not found")
        charge = self.charges.get(str(p.get("telegram_payment_charge_id", "")))
        if charge is None:
            raise bad_request("CHARGE_NOT_FOUND")
        if charge.user_id != user_id:
            raise bad_request("USER_ID_INVALID")
        if charge.refunded:
            raise bad_request("CHARGE_ALREADY_REFUNDED")
        charge.refunded = True
        self.push_update(self._service_message(
            charge, "refunded_payment", {
                "currency": "XTR", "total_amount": charge.amount,
                "invoice_payload": charge.payload,
                "telegram_payment_charge_id": charge.charge_id}))
        return True

    # -- the buyer ----------------------------------------------------------------------
    def invoices(self, chat_id: int) -> list[SentMessage]:
        return [m for m in self.messages(chat_id) if m.kind == "invoice"]

    def _service_message(self, charge: Charge, key: str, body: dict[str, Any]) -> dict[str, Any]:
        chat = self.add_chat(charge.chat_id)
        message = {"message_id": self.next_message_id(charge.chat_id),
                   "date": int(time.time()), "chat": chat,
                   "from": self.add_user(charge.user_id), key: body}
        self.remember_incoming(message)
        return {"update_id": self.next_update_id(), "message": message}

    def payment_update(self, charge: Charge) -> dict[str, Any]:
        """A (new) update carrying the successful_payment of ``charge``."""
        return self._service_message(charge, "successful_payment", {
            "currency": "XTR", "total_amount": charge.amount, "invoice_payload": charge.payload,
            "telegram_payment_charge_id": charge.charge_id, "provider_payment_charge_id": ""})

    async def pay(self, invoice: SentMessage, user_id: int, *,
                  timeout: float = CHECKOUT_DEADLINE) -> Payment:
        """``user_id`` presses Pay: pre-checkout, then (if the bot said ok) the payment."""
        details = invoice.invoice
        assert details is not None, "not an invoice"
        query_id = f"{next(_CHARGES)}{user_id}"
        self._open_checkouts[query_id] = time.monotonic()
        self.push_update({"pre_checkout_query": {
            "id": query_id, "from": self.add_user(user_id),
            "currency": details["currency"], "total_amount": details["total_amount"],
            "invoice_payload": details["payload"]}})
        answer = await self.wait_for(
            lambda: next((a for a in self.checkout_answers
                          if a["pre_checkout_query_id"] == query_id), None),
            timeout, what="answerPreCheckoutQuery")
        if not answer["ok"]:
            return Payment(answer, None, None)
        charge = Charge(f"stxFAKE{next(_CHARGES):06d}{user_id}", user_id, invoice.chat_id,
                        details["total_amount"], details["payload"])
        self.charges[charge.charge_id] = charge
        update = self.push_update(self.payment_update(charge))
        return Payment(answer, charge, update)
