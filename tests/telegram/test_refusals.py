"""Requests the bot refuses or fails: one clear sentence, and nothing charged."""

from __future__ import annotations

from typing import Any

from tests.fakes.a1111 import FakeA1111
from tests.fakes.server import InternalServer, jpeg_bytes, png_bytes
from tests.fakes.telegram_api import FakeTelegram
from tests.telegram.conftest import USER_ID, Harness, start_telegram
from tests.texts import WARNING, en, head, warning


async def _refused(tg: Harness, update: dict[str, Any]) -> str:
    """Send ``update``, return the bot's reply, and check nothing was charged or generated."""
    tg.send(update)
    answer = await tg.reply(update)
    await tg.idle()
    assert answer.kind == "text" and answer.buttons == []
    assert not tg.a1111.img2img_bodies
    assert await tg.balance() in (None, 10)
    assert [kind for kind, _ in await tg.ledger()] in ([], ["initial"])
    return answer.text or ""


async def test_bad_options(tg: Harness) -> None:
    text = await _refused(tg, tg.fake.build.photo(caption="/img2img a cat --strenght 0.5"))
    assert text.startswith(WARNING + head("error-unknown-option", option="--strenght"))
    text = await _refused(tg, tg.fake.build.photo(caption="/img2img a cat --strength 7"))
    assert "strength" in text.lower()
    text = await _refused(tg, tg.fake.build.photo(caption="/img2img --steps 20"))
    assert text == warning("error-prompt-missing")


async def test_non_image_file_is_refused_without_downloading(tg: Harness) -> None:
    update = tg.fake.build.document(b"%PDF-1.7 ...", file_name="notes.pdf",
                                    caption="/img2img a cat")
    text = await _refused(tg, update)
    assert text == warning("tg-not-an-image", name="notes.pdf")
    assert tg.fake.downloads == [] and not tg.fake.calls_to("getFile")


async def test_corrupt_image_is_refused(tg: Harness) -> None:
    broken = png_bytes((200, 200))[:300]
    text = await _refused(tg, tg.fake.build.document(broken, file_name="broken.png",
                                                     caption="/img2img a cat"))
    assert text in (warning("error-image-damaged"), warning("error-image-incomplete"))
    text = await _refused(tg, tg.fake.build.document(b"just text", file_name="fake.jpg",
                                                     caption="/img2img a cat"))
    assert text == warning("error-image-unreadable", formats=en("image-formats"))


async def test_file_over_20_mb_is_refused_before_any_download(tg: Harness) -> None:
    update = tg.fake.build.document(png_bytes((64, 64)), file_name="huge.png",
                                    file_size=25 * 2**20, caption="/img2img a cat")
    text = await _refused(tg, update)
    assert text == warning("tg-too-big", size="25 MB", limit="20 MB")
    assert not tg.fake.calls_to("getFile") and tg.fake.downloads == []


async def test_the_size_getfile_reports_is_checked_before_any_download(tg: Harness) -> None:
    """A message without file_size, on a self-hosted Bot API that serves files past 20 MB."""
    tg.fake.download_limit = 2000 * 2**20
    update = tg.fake.build.document(png_bytes((64, 64)), file_name="huge.png",
                                    file_size=25 * 2**20, caption="/img2img a cat")
    del update["message"]["document"]["file_size"]
    text = await _refused(tg, update)
    assert text == warning("tg-too-big", size="25 MB", limit="20 MB")
    assert tg.fake.calls_to("getFile") and tg.fake.downloads == []
    assert await tg.balance() in (None, 10)


async def test_a_bot_api_redirect_into_the_network_is_not_followed(tg: Harness) -> None:
    """A self-hosted Bot API (a configured origin) whose file route points at 127.0.0.1."""
    async with InternalServer() as internal:
        tg.fake.file_redirect = f"{internal.base_url}/secret.png"
        text = await _refused(tg, tg.fake.build.photo(caption="/img2img a cat"))
        assert text == warning("tg-fetch-again")
        assert internal.requests == []
    assert await tg.balance() in (None, 10)


async def test_insufficient_credits(fake: FakeTelegram, a1111: FakeA1111,
                                    settings: dict[str, Any]) -> None:
    settings["credits"]["initial"] = 0
    async with start_telegram(fake, a1111, settings) as tg:
        update = tg.send(tg.fake.build.photo(caption="/img2img a cat"))
        answer = await tg.reply(update)
        assert answer.text == warning("error-insufficient-credits", count=1, balance=0)
        assert not a1111.img2img_bodies
        # Refused as its job was stored: nothing of it was kept, not even the user's row.
        assert await tg.balance() is None and await tg.ledger() == []


async def test_backend_failure_is_refunded_and_explained(tg: Harness) -> None:
    tg.a1111.fail("server_error")
    update = tg.send(tg.fake.build.photo(jpeg_bytes((640, 480)), caption="/img2img a cat"))
    await tg.idle()
    status = await tg.reply(update)
    told = warning("failure-refunded-balance", message=en("error-job-failed"), balance=10)
    await tg.fake.wait_for(lambda: status.text == told, what="the error")
    assert status.buttons == []  # no Cancel left on a finished job
    assert tg.fake.photos(USER_ID) == []
    assert await tg.balance() == 10
    assert await tg.ledger() == [("initial", 10), ("reserve", -1), ("refund", 1)]
    await tg.assert_ledger_consistent()
