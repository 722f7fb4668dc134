"""Results go through an outbox: a refused upload is delivered later or refunded, never lost."""

from __future__ import annotations

from typing import Any

from tests.fakes.a1111 import FakeA1111
from tests.fakes.telegram_api import FakeTelegram
from tests.telegram.conftest import USER_ID, make_settings, start_telegram
from tests.texts import en


def _settings(tmp_path: Any, fake: FakeTelegram, a1111: FakeA1111,
              **jobs: float) -> dict[str, Any]:
    return make_settings(tmp_path, fake, a1111, jobs={"retry_base": 0.3, **jobs})


async def test_an_upload_refused_past_the_retries_is_delivered_later(
        tmp_path: Any, fake: FakeTelegram, a1111: FakeA1111) -> None:
    # More 429s than the send retries take (the transport retries a few times, then gives up).
    fake.fail_next("sendPhoto", 429, retry_after=1, times=6)
    async with start_telegram(fake, a1111, _settings(tmp_path, fake, a1111)) as tg:
        update = tg.send(fake.build.photo(caption="/img2img a cat"))
        status = await tg.reply(update, kind="text")
        await fake.wait_for(lambda: status.text == en("delivery-deferred"),
                            timeout=15, what="the user told the image waits")
        result = await tg.result(update, timeout=30)
        assert result.kind == "photo"
        await tg.settled()
        assert await tg.balance() == 9
        assert await tg.ledger() == [("initial", 10), ("reserve", -1)]
        photos = [m for m in fake.messages(USER_ID) if m.kind == "photo"]
        assert len(photos) == 1  # delivered once
        await fake.wait_for(lambda: status.message_id not in {
            m.message_id for m in fake.messages(USER_ID)}, what="the waiting status to go")


async def test_an_upload_refused_until_the_deadline_is_refunded_and_the_user_told(
        tmp_path: Any, fake: FakeTelegram, a1111: FakeA1111) -> None:
    fake.fail_next("sendPhoto", 429, retry_after=1, times=10_000)
    settings = _settings(tmp_path, fake, a1111, delivery_deadline=4.0, heartbeat=0.2,
                         lease=1.0)
    async with start_telegram(fake, a1111, settings) as tg:
        update = tg.send(fake.build.photo(caption="/img2img a cat"))
        notice = await fake.wait_for_message(
            USER_ID, lambda m: m.text == en("notice-expired-refunded", count=1), timeout=30)
        assert notice.reply_to_message_id == update["message"]["message_id"]
        assert await tg.balance() == 10
        assert await tg.ledger() == [("initial", 10), ("reserve", -1), ("refund", 1)]
        assert not [m for m in fake.messages(USER_ID) if m.kind == "photo"]


async def test_a_blocked_bot_refunds_at_once(tmp_path: Any, fake: FakeTelegram,
                                             a1111: FakeA1111) -> None:
    fake.fail_next("sendPhoto", 403, "Forbidden: bot was blocked by the user")
    async with start_telegram(fake, a1111, _settings(tmp_path, fake, a1111)) as tg:
        tg.send(fake.build.photo(caption="/img2img a cat"))
        await fake.wait_for(lambda: fake.calls_to("sendPhoto"), what="the upload")
        await tg.idle()
        assert await tg.ledger() == [("initial", 10), ("reserve", -1), ("refund", 1)]
        job = [j for j in (await tg.app.storage.stats())["jobs"]]
        assert job == ["expired"]
