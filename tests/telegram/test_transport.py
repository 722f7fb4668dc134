"""Flood control, duplicate updates, webhook mode and the notice after a crash."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from adapters.telegram import run_telegram
from adapters.telegram.transport import CONFIRM_WITHIN
from bot.app import running_app
from bot.config import build_config
from bot.errors import ConfigError
from tests.dead_process import left_running
from tests.fakes.a1111 import FakeA1111
from tests.fakes.telegram_api import FakeTelegram
from tests.telegram.conftest import USER_ID, Harness, image_size, start_telegram
from tests.texts import en, field


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_polling_asks_only_for_what_the_bot_handles(tg: Harness) -> None:
    await tg.fake.wait_for_call("getUpdates", lambda c: "allowed_updates" in c.params)
    assert tg.fake.allowed_updates is not None
    assert {"message", "callback_query"} <= set(tg.fake.allowed_updates)
    assert "edited_message" not in tg.fake.allowed_updates
    assert tg.fake.calls_to("setMyCommands")  # the command menus are published at start


async def test_a_refused_token_stops_start_up_with_a_clear_error(
        fake: FakeTelegram, a1111: FakeA1111, settings: dict[str, Any]) -> None:
    settings["telegram"]["token"] = "42:WRONG-TOKEN"
    async with running_app(build_config(settings, environ={})) as app:
        with pytest.raises(ConfigError, match="refused the bot token"):
            await run_telegram(app, asyncio.Event())


async def test_flood_control_waits_and_sends_again(tg: Harness) -> None:
    tg.fake.fail_next("sendPhoto", 429, retry_after=1)
    update = tg.send(tg.fake.build.photo(caption="/img2img a cat"))
    result = await tg.result(update, timeout=6)
    calls = tg.fake.calls_to("sendPhoto")
    assert [c.status for c in calls] == [429, 200]
    assert calls[1].at - calls[0].at >= 1.0
    body = tg.a1111.img2img_bodies[0]
    assert image_size(result.data) == (body["width"], body["height"])
    assert len(tg.fake.photos(USER_ID)) == 1 and await tg.balance() == 9


async def test_a_redelivered_update_is_processed_once(tg: Harness) -> None:
    update = tg.send(tg.fake.build.photo(caption="/img2img a cat"))
    await tg.result(update)
    await tg.settled()
    tg.send(update, redeliver=True)
    marker = tg.send(tg.fake.build.text("/img2img"))
    await tg.reply(marker)
    await tg.fake.wait_until_consumed()
    await asyncio.sleep(0.2)
    await tg.idle()
    assert len(tg.a1111.img2img_bodies) == 1 and len(tg.fake.photos(USER_ID)) == 1
    assert await tg.ledger() == [("initial", 10), ("reserve", -1)]


async def test_webhook_checks_the_secret_token(fake: FakeTelegram, a1111: FakeA1111,
                                               settings: dict[str, Any]) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/tg/hook"
    settings["telegram"].update(mode="webhook", webhook={
        "url": url, "path": "/tg/hook", "host": "127.0.0.1", "port": port,
        "secret_token": "right-secret_1"})
    async with start_telegram(fake, a1111, settings) as tg:
        registered = await fake.wait_for_call("setWebhook")
        assert registered.params["url"] == url
        assert registered.params["secret_token"] == "right-secret_1"
        assert set(registered.params["allowed_updates"]) >= {"message", "callback_query"}
        wrong = fake.build.photo(caption="/img2img a cat")
        assert await fake.deliver_webhook(url, wrong, secret_token="wrong") == 401
        assert await fake.deliver_webhook(url, wrong) == 401  # no header at all
        right = fake.build.photo(caption="/img2img a dog")
        assert await fake.deliver_webhook(url, right, secret_token="right-secret_1") == 200
        result = await tg.result(right)
        assert field("prompt", "a dog") in (result.caption or "")
        await tg.settled()
        assert len(a1111.img2img_bodies) == 1 and await tg.balance() == 9
        assert not fake.calls_to("getUpdates")
    # The webhook stays set across a restart, so Telegram keeps queueing updates meanwhile.
    assert not fake.calls_to("deleteWebhook")


async def _crashed(fake: FakeTelegram, settings: dict[str, Any],
                   attempts: int) -> dict[str, Any]:
    """A request whose job a process that then died was running (its ``attempts``-th run)."""
    request = fake.build.photo(caption="/img2img a cat")["message"]
    async with running_app(build_config(settings, environ={}), start_workers=False) as app:
        await left_running(app, "dead0job", user_key=f"telegram:{USER_ID}",
                           chat_key=f"telegram:{USER_ID}", attempts=attempts,
                           origin={"chat_id": USER_ID, "message_id": request["message_id"]})
    return request


async def _told(fake: FakeTelegram, request: dict[str, Any], text: str) -> None:
    notice = await fake.wait_for_message(USER_ID, lambda m: m.text == text)
    assert notice.reply_to_message_id == request["message_id"]


async def test_a_job_a_crash_interrupted_is_made_again(
        fake: FakeTelegram, a1111: FakeA1111, settings: dict[str, Any]) -> None:
    request = await _crashed(fake, settings, attempts=1)
    async with start_telegram(fake, a1111, settings) as tg:
        await _told(fake, request, en("notice-requeued"))
        result = await fake.wait_for_message(
            USER_ID, lambda m: m.reply_to_message_id == request["message_id"], kind="photo")
        assert en("tg-button-again") in result.button_texts
        await tg.settled()
        assert await tg.balance() == 9
        assert await tg.ledger() == [("initial", 10), ("reserve", -1)]
        job = await tg.app.storage.get_job("dead0job")
        assert job is not None and (job.status, job.charge, job.attempts) == (
            "delivered", "committed", 2)


async def test_a_job_interrupted_twice_is_refunded_and_its_user_told(
        fake: FakeTelegram, a1111: FakeA1111, settings: dict[str, Any]) -> None:
    request = await _crashed(fake, settings, attempts=2)
    async with start_telegram(fake, a1111, settings) as tg:
        await _told(fake, request, en("notice-restarted-refunded", count=1))
        assert await tg.balance() == 10
        assert await tg.ledger() == [("initial", 10), ("reserve", -1), ("refund", 1)]
    async with start_telegram(fake, a1111, settings):
        pass
    assert len([m for m in fake.messages(USER_ID) if "restarted" in (m.text or "")]) == 1
    assert a1111.img2img_bodies == []


async def test_a_stop_hands_running_jobs_to_the_next_start(
        fake: FakeTelegram, a1111: FakeA1111, settings: dict[str, Any]) -> None:
    a1111.delay = 10
    async with start_telegram(fake, a1111, settings) as tg:
        update = tg.send(fake.build.photo(caption="/img2img a slow cat"))
        status = await tg.reply(update, kind="text")
        await fake.wait_for(lambda: a1111.img2img_bodies, what="the job to start")
        tg.stop.set()
        async with asyncio.timeout(3):
            await tg.task
        assert status.text == en("restarting") and status.buttons == []
    a1111.delay = 0.05
    async with start_telegram(fake, a1111, settings) as tg:
        await tg.result(update)
        await tg.settled()
        assert await tg.balance() == 9  # charged once, for the image delivered
        assert await tg.ledger() == [("initial", 10), ("reserve", -1)]
        assert len(a1111.img2img_bodies) == 2
        assert status.message_id not in {m.message_id for m in fake.messages(USER_ID)}


async def test_an_update_killed_before_its_job_existed_is_made_on_redelivery(
        tg: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    # The first attempt stops for good just before the job's transaction, as a process
    # killed there would; the update must not count as handled, so the redelivery makes it.
    # Both ways of storing a job (queued, or started where a slot is free) count.
    attempts = 0

    def killed_first(real: Any) -> Any:
        async def attempt(*args: Any, **kwargs: Any) -> Any:
            nonlocal attempts
            attempts += 1
            if attempts == 1:
                await asyncio.Event().wait()
            return await real(*args, **kwargs)
        return attempt

    for name in ("create_job", "create_started_job"):
        monkeypatch.setattr(tg.app.storage, name, killed_first(getattr(tg.app.storage, name)))
    update = tg.send(tg.fake.build.photo(caption="/img2img a cat"))
    for _ in range(100):
        if attempts:
            break
        await asyncio.sleep(0.05)
    tg.send(update, redeliver=True)
    # The first attempt stays stuck, so the bot never settles; its batch holds the next
    # getUpdates back for CONFIRM_WITHIN, and then the redelivery comes.
    await tg.result(update, timeout=CONFIRM_WITHIN + 5)
    tg.send(update, redeliver=True)  # once made, a redelivery is still ignored
    marker = tg.send(tg.fake.build.text("/img2img"))
    await tg.reply(marker)
    await tg.fake.wait_until_consumed()
    await asyncio.sleep(0.2)
    assert attempts == 3 and len(tg.a1111.img2img_bodies) == 1
    assert len(tg.fake.photos(USER_ID)) == 1
    assert await tg.ledger() == [("initial", 10), ("reserve", -1)]
