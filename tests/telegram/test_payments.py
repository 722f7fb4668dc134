"""Buying credits with Telegram Stars, end to end: real aiogram against the fake Bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.a1111 import FakeA1111
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.telegram_model import SentMessage
from tests.fakes.telegram_payments import Payment
from tests.telegram.conftest import OWNER_ID, USER_ID, Harness, make_settings, start_telegram
from tests.telegram.talk import press, say
from tests.texts import en, pattern, plain, plain_head, warning

OTHER_ID = 556
PACKS = [{"id": "small", "credits": 100, "stars": 50},
         {"id": "big", "credits": 500, "stars": 200, "title": "Big pack"},
         {"id": "discord-only", "credits": 5, "discord_sku": 77}]


@pytest.fixture
def settings(tmp_path: Path, fake: FakeTelegram, a1111: FakeA1111) -> dict[str, Any]:
    return make_settings(tmp_path, fake, a1111, payments={"enabled": True, "packs": PACKS})


async def invoice_for(tg: Harness, pack: str = "100 credits", user_id: int = USER_ID,
                      ) -> SentMessage:
    """/buy, press the pack's button: the invoice the bot sends."""
    before = len(tg.fake.invoices(user_id))
    shown = await say(tg, "/buy", user_id=user_id)
    answer = await press(tg, shown, pack, user_id=user_id)
    assert answer["text"] == en("tg-invoice-sent")
    return await tg.fake.wait_for(lambda: tg.fake.invoices(user_id)[before:] and
                                  tg.fake.invoices(user_id)[-1], what="an invoice")


async def bought(tg: Harness, user_id: int = USER_ID) -> Payment:
    """A paid small pack, once the bot has said thank you."""
    payment = await tg.fake.pay(await invoice_for(tg, user_id=user_id), user_id)
    assert payment.answer["ok"] is True and payment.charge is not None
    thanks = plain_head("tg-thanks", count=100)
    await tg.fake.wait_for_message(user_id, lambda m: thanks in (m.text or ""))
    return payment


async def test_buy_shows_the_packs_and_sends_a_stars_invoice(tg: Harness) -> None:
    shown = await say(tg, "/buy")
    assert shown.button_texts == ["100 credits · 50 ⭐", "Big pack · 200 ⭐"]
    assert shown.text is not None and "/terms" in shown.text and "/paysupport" in shown.text
    await press(tg, shown, "Big pack")
    call = await tg.fake.wait_for_call("sendInvoice")
    assert call.params["currency"] == "XTR"
    assert not call.params.get("provider_token")
    assert call.params["prices"] == [{"label": "Big pack", "amount": 200}]
    assert call.params["payload"] == f"buy1:big:500:200:{USER_ID}"
    [invoice] = tg.fake.invoices(USER_ID)
    assert invoice.invoice is not None and invoice.invoice["total_amount"] == 200


async def test_a_purchase_grants_once_even_when_the_payment_is_delivered_twice(
        tg: Harness) -> None:
    payment = await bought(tg)
    assert payment.charge is not None and payment.update is not None
    thanks = tg.fake.last_message(USER_ID)
    assert thanks is not None and thanks.text is not None
    assert thanks.text == plain("tg-thanks", count=100, balance=110,
                                charge=payment.charge.charge_id)

    tg.send(payment.update, redeliver=True)  # the very same update again
    again = tg.send(tg.fake.payment_update(payment.charge))  # a new update, the same charge
    note = await tg.fake.wait_for_message(
        USER_ID, lambda m: m.message_id > again["message"]["message_id"])
    assert note.text == en("tg-already-granted", count=110)
    await tg.idle()
    assert await tg.ledger() == [("initial", 10), ("purchase", 100)]
    await tg.assert_ledger_consistent()

    shown = await say(tg, "/balance")
    assert shown.text is not None
    assert f"+100 {en('ledger-purchase', pack='small')}" in shown.text


async def test_pre_checkout_is_refused_for_a_pack_gone_a_stranger_or_payments_off(
        tg: Harness) -> None:
    invoice = await invoice_for(tg)
    stranger = await tg.fake.pay(invoice, OTHER_ID)
    assert stranger.answer["ok"] is False and stranger.charge is None
    assert stranger.answer["error_message"] == en("pay-error-not-yours")

    tg.app.payments.config.packs = [p for p in tg.app.payments.config.packs if p.id != "small"]
    gone = await tg.fake.pay(invoice, USER_ID)
    assert gone.answer == {"pre_checkout_query_id": gone.answer["pre_checkout_query_id"],
                           "ok": False, "error_message": en("pay-error-pack-gone")}

    big = await invoice_for(tg, "Big pack")
    tg.app.payments.config.enabled = False
    off = await tg.fake.pay(big, USER_ID)
    assert off.answer["ok"] is False
    assert off.answer["error_message"] == en("pay-error-off")
    assert tg.fake.charges == {}
    assert await tg.ledger() == []  # nobody was charged or granted anything


async def test_owner_refund_gives_the_stars_back_and_writes_the_ledger_row(tg: Harness) -> None:
    payment = await bought(tg)
    assert payment.charge is not None
    charge = payment.charge.charge_id
    reply = await say(tg, f"/refund {charge}", user_id=OWNER_ID)
    assert reply.text == plain("tg-refunded", stars=50, charge=charge, count=100, pack="small",
                               balance=10)
    [call] = tg.fake.calls_to("refundStarPayment")
    assert call.params == {"user_id": USER_ID, "telegram_payment_charge_id": charge}
    assert payment.charge.refunded
    told = await tg.fake.wait_for_message(USER_ID, lambda m: (m.text or "").startswith("↩️"))
    assert told.text == en("tg-buyer-told", count=100, stars=50, balance=10)
    assert await tg.ledger() == [("initial", 10), ("purchase", 100), ("refund", -100)]

    again = await say(tg, f"/refund {charge}", user_id=OWNER_ID)
    assert again.text == warning("pay-error-refunded")
    assert len(tg.fake.calls_to("refundStarPayment")) == 1
    await tg.idle()
    await tg.assert_ledger_consistent()


async def test_a_partly_spent_pack_is_refunded_only_with_force(
        tmp_path: Path, fake: FakeTelegram, a1111: FakeA1111) -> None:
    settings = make_settings(tmp_path, fake, a1111, credits={"initial": 0},
                             payments={"enabled": True, "packs": PACKS})
    async with start_telegram(fake, a1111, settings) as tg:
        payment = await bought(tg)
        assert payment.charge is not None
        await tg.result(tg.send(fake.build.photo(caption="/img2img a cat")))
        await tg.idle()
        charge = payment.charge.charge_id
        refused = await say(tg, f"/refund {charge}", user_id=OWNER_ID)
        assert refused.text == warning("pay-error-spent", spent=1, credits=100)
        assert fake.calls_to("refundStarPayment") == []
        forced = await say(tg, f"/refund --force {charge}", user_id=OWNER_ID)
        assert forced.text == plain("tg-refunded", stars=50, charge=charge, count=100,
                                    pack="small", balance=-1)
        assert await tg.balance() == -1
        assert await tg.ledger() == [("purchase", 100), ("reserve", -1), ("refund", -100)]
        await tg.assert_ledger_consistent()


async def test_refund_is_for_owners_and_needs_a_known_charge(tg: Harness) -> None:
    payment = await bought(tg)
    assert payment.charge is not None
    reply = await say(tg, f"/refund {payment.charge.charge_id}")
    assert reply.text == warning("dc-owners-only")
    unknown = await say(tg, "/refund stxNOPE", user_id=OWNER_ID)
    assert unknown.text == warning("pay-error-no-purchase", charge="stxNOPE")
    usage = await say(tg, "/refund", user_id=OWNER_ID)
    assert usage.text == warning("tg-refund-usage")
    assert tg.fake.calls_to("refundStarPayment") == []
    assert await tg.ledger() == [("initial", 10), ("purchase", 100)]


async def test_a_refund_done_at_telegram_but_not_recorded_is_recorded_again(
        tg: Harness) -> None:
    payment = await bought(tg)
    assert payment.charge is not None
    payment.charge.refunded = True  # as if the bot died right after refundStarPayment
    reply = await say(tg, f"/refund {payment.charge.charge_id}", user_id=OWNER_ID)
    assert reply.text == plain("tg-refunded", stars=50, charge=payment.charge.charge_id,
                               count=100, pack="small", balance=10)
    assert await tg.ledger() == [("initial", 10), ("purchase", 100), ("refund", -100)]


async def test_support_terms_and_stats(tg: Harness) -> None:
    support = await say(tg, "/paysupport")
    assert support.text is not None and support.text.startswith(en("tg-support-header") + "\n")
    assert "charge id" in support.text
    terms = await say(tg, "/terms")
    assert terms.text is not None and "no cash value" in terms.text
    await bought(tg)
    stats = await say(tg, "/stats", user_id=OWNER_ID)
    assert stats.text is not None
    assert pattern("revenue-day", where=en("revenue-stars"), purchases=1, credits=100,
                   money="50 ⭐").search(stats.text)


@pytest.fixture
async def no_packs(tmp_path: Path, fake: FakeTelegram, a1111: FakeA1111,
                   ) -> AsyncIterator[Harness]:
    async with start_telegram(fake, a1111, make_settings(tmp_path, fake, a1111)) as tg:
        yield tg


async def test_without_packs_buying_is_not_offered(no_packs: Harness) -> None:
    reply = await say(no_packs, "/buy")
    assert reply.text == warning("pay-error-not-offered")
