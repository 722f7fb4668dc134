"""The status reply: queue position, percent, throttled edits, Cancel, then the result."""

from __future__ import annotations

import itertools
from typing import Any

from tests.fakes.a1111 import FakeA1111
from tests.fakes.telegram_api import FakeTelegram
from tests.telegram.conftest import GROUP_ID, USER_ID, start_telegram
from tests.texts import en, head, warning

INTERVAL = 0.2


async def test_progress_is_edited_then_the_result_arrives(
        fake: FakeTelegram, a1111: FakeA1111, settings: dict[str, Any]) -> None:
    a1111.delay = 1.2
    settings["telegram"]["progress_interval"] = INTERVAL
    async with start_telegram(fake, a1111, settings) as tg:
        first = tg.send(fake.build.photo(caption="/img2img one"))
        status = await tg.reply(first, kind="text")
        await fake.wait_for(lambda: a1111.img2img_bodies, what="the first job to start")
        second = tg.send(fake.build.photo(caption="/img2img two", user_id=777))
        queued = await tg.reply(second, kind="text")
        assert status.button_texts == [en("tg-button-cancel")]
        await tg.result(first, timeout=5)
        await tg.result(second, timeout=5)
        await tg.settled()
        shown = [h["text"] for h in status.history] + [status.text]
        assert any(en("status-generating-word") in line and "%" in line for line in shown), shown
        assert status.deleted  # the result replaced it
        # The second job waited its turn and said so.
        lines = [h["text"] for h in queued.history] + [queued.text]
        assert any(head("status-queued") in line or en("status-next") in line for line in lines)
        # At most one edit per interval per message.
        for message in (status, queued):
            times = [h["at"] for h in message.history]
            edits = [b - a for a, b in itertools.pairwise(times)]
            assert all(gap >= INTERVAL * 0.9 for gap in edits), edits
        assert "upload_photo" in fake.actions(USER_ID)


async def test_cancel_button_is_for_the_requester_only(
        fake: FakeTelegram, a1111: FakeA1111, settings: dict[str, Any]) -> None:
    a1111.delay = 3
    async with start_telegram(fake, a1111, settings) as tg:
        update = tg.send(fake.build.photo(caption="/img2img slow", chat_id=GROUP_ID))
        status = await tg.reply(update, kind="text")
        await fake.wait_for(lambda: a1111.img2img_bodies, what="the job to start")
        tg.send(fake.build.press(status, en("tg-button-cancel"), user_id=999))
        await fake.wait_for(lambda: fake.callback_answers, what="an answer")
        assert fake.callback_answers[-1]["text"] == en("cancel-not-yours")
        tg.send(fake.build.press(status, en("tg-button-cancel")))
        await fake.wait_for(lambda: len(fake.callback_answers) == 2, what="an answer")
        assert fake.callback_answers[-1]["text"] == en("cancel-done")
        told = warning("failure-refunded-balance", message=en("error-cancelled"), balance=10)
        await fake.wait_for(lambda: status.text == told, what="the status")
        assert not status.buttons
        await tg.idle()
        assert fake.photos(GROUP_ID) == []
        assert await tg.ledger() == [("initial", 10), ("reserve", -1), ("refund", 1)]
        assert await tg.balance(999) is None
        # A press after the end is answered, not an error.
        tg.send(fake.build.callback(status, status.history[0]["reply_markup"][
            "inline_keyboard"][0][0]["callback_data"]))
        await fake.wait_for(lambda: len(fake.callback_answers) == 3, what="an answer")
        assert fake.callback_answers[-1]["text"] in (en("cancel-finished"), en("cancel-too-late"))


async def test_a_deleted_status_message_is_not_an_error(
        fake: FakeTelegram, a1111: FakeA1111, settings: dict[str, Any]) -> None:
    a1111.delay = 0.6
    settings["telegram"]["progress_interval"] = 0.1
    async with start_telegram(fake, a1111, settings) as tg:
        update = tg.send(fake.build.photo(caption="/img2img a cat"))
        status = await tg.reply(update, kind="text")
        fake.delete_as_user(USER_ID, status.message_id)
        result = await tg.result(update)
        assert result.kind == "photo"
        failed = [c.description for c in fake.calls_to("editMessageText") if not c.ok]
        assert all("message to edit not found" in (d or "") for d in failed)
        assert len(failed) <= 1  # it stops editing a message that is gone


async def test_a_failure_after_the_status_was_deleted_is_still_told(
        fake: FakeTelegram, a1111: FakeA1111, settings: dict[str, Any]) -> None:
    a1111.fail("server_error")
    settings["telegram"]["progress_interval"] = 0.5  # the user deletes it before the edit
    async with start_telegram(fake, a1111, settings) as tg:
        update = tg.send(fake.build.photo(caption="/img2img a cat"))
        status = await tg.reply(update, kind="text")
        fake.delete_as_user(USER_ID, status.message_id)
        told = await fake.wait_for_message(USER_ID, lambda m: "refunded" in (m.text or ""))
        assert told.reply_to_message_id == update["message"]["message_id"]
        assert told.buttons == [] and await tg.balance() == 10
