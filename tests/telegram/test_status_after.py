"""Fast jobs cost getFile + sendPhoto; slow ones still show a status, progress and the action."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.fakes.a1111 import FakeA1111
from tests.fakes.telegram_api import FakeTelegram
from tests.telegram.conftest import USER_ID, start_telegram
from tests.texts import en

# What a job costs in Bot API calls (polling, startup and the incoming photo aside).
JOB_METHODS = ("getFile", "sendMessage", "editMessageText", "deleteMessage", "sendChatAction",
               "sendPhoto", "sendDocument")


def job_calls(fake: FakeTelegram) -> int:
    return sum(fake.counts[method] for method in JOB_METHODS)


async def test_jobs_finishing_within_a_second_cost_two_calls(
        fake: FakeTelegram, a1111: FakeA1111, settings: dict[str, Any]) -> None:
    del settings["telegram"]["status_after"]  # the default, 1 s
    a1111.delay = 0.05
    users = [USER_ID + n for n in range(12)]
    async with start_telegram(fake, a1111, settings) as tg:
        before = job_calls(fake)
        for wave in (users[:3], users[3:6], users[6:9], users[9:]):  # each within a second
            updates = [tg.send(fake.build.photo(caption="/img2img a cat", user_id=u, chat_id=u))
                       for u in wave]
            for update in updates:
                await tg.result(update, timeout=10)
        await tg.idle()
        per_job = (job_calls(fake) - before) / len(users)
        assert per_job <= 2.2, fake.counts
        assert fake.counts["sendPhoto"] == len(users)
        sent = [m for u in users for m in fake.messages(u, include_deleted=True)]
        assert [m for m in sent if m.kind == "text"] == []  # no status message anywhere


async def test_a_slow_job_still_shows_its_status_progress_and_action(
        fake: FakeTelegram, a1111: FakeA1111, settings: dict[str, Any]) -> None:
    settings["telegram"].update(status_after=0.3, progress_interval=0.2)
    a1111.delay = 1.5
    async with start_telegram(fake, a1111, settings) as tg:
        update = tg.send(fake.build.photo(caption="/img2img a slow cat"))
        status = await tg.reply(update, kind="text")
        assert status.button_texts == ["✖️ Cancel"]
        job_id = next(iter(tg.app.service.active))
        remembered = None
        for _ in range(50):  # remembered right after Telegram's answer
            remembered = await tg.app.service.status_message(job_id)
            if remembered:
                break
            await asyncio.sleep(0.02)
        assert remembered == str(status.message_id)
        await tg.result(update, timeout=10)
        await tg.settled()
        shown = [h["text"] for h in status.history] + [status.text]
        assert any(en("status-generating-word") in line and "%" in line for line in shown), shown
        assert status.deleted
        assert "upload_photo" in fake.actions(USER_ID)


async def test_the_chat_action_waits_for_generation_to_last(
        fake: FakeTelegram, a1111: FakeA1111, settings: dict[str, Any]) -> None:
    settings["telegram"].update(status_after=0.6, progress_interval=0.1)
    a1111.delay = 0.4  # past nothing: the action and the status both stay away
    async with start_telegram(fake, a1111, settings) as tg:
        update = tg.send(fake.build.photo(caption="/img2img a cat"))
        await tg.result(update)
        await tg.idle()
        assert fake.actions(USER_ID) == []
        assert [m.kind for m in fake.messages(USER_ID, include_deleted=True)] == ["photo"]
