"""How results are delivered: photo or document, the full-resolution file, the caption."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from adapters.telegram.delivery import MEDIA
from bot.models import ImageData, UserRef
from bot.result_files import fits_photo
from tests.fakes.a1111 import FakeA1111
from tests.fakes.telegram_api import FakeTelegram
from tests.telegram.conftest import USER_ID, Harness, image_size, start_telegram
from tests.texts import field


def _png(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("1", size).save(buf, "PNG")
    return buf.getvalue()


async def test_the_file_preference_also_sends_the_full_resolution_file(tg: Harness) -> None:
    await tg.app.preferences.set_user(UserRef("telegram", str(USER_ID)), "file", "on")
    update = tg.send(tg.fake.build.photo(caption="/img2img a cat"))
    photo = await tg.result(update)
    document = await tg.fake.wait_for_message(USER_ID, kind="document")
    assert document.reply_to_message_id == update["message"]["message_id"]
    assert document.data == photo.data and (document.filename or "").endswith(".png")
    assert image_size(document.data) == image_size(photo.data)
    assert await tg.balance() == 9  # one job, one charge


async def test_a_result_too_unequal_for_a_photo_goes_as_a_document(
        fake: FakeTelegram, a1111: FakeA1111, settings: dict[str, Any]) -> None:
    settings["limits"] = {"max_side": 4096}
    settings["providers"]["webui"]["max_side"] = 4096
    async with start_telegram(fake, a1111, settings) as tg:
        update = tg.send(fake.build.photo(caption="/img2img a banner --size 4096x128"))
        result = await tg.result(update)
        assert result.kind == "document" and fake.photos(USER_ID) == []
        assert image_size(result.data) == (4096, 128)
        assert field("prompt", "a banner") in (result.caption or "")
        assert not [c for c in fake.calls_to("sendPhoto") if not c.ok]


async def test_a_long_prompt_is_trimmed_to_fit_the_caption(tg: Harness) -> None:
    prompt = "a <cat> & a dog " * 120  # 1,920 characters, HTML specials included
    update = tg.send(tg.fake.build.photo(caption=f"/img2img {prompt}"))
    result = await tg.result(update)
    caption = result.caption or ""
    assert len(caption.encode("utf-16-le")) // 2 <= 1024
    first_line = caption.split("\n")[0]
    assert first_line.startswith(field("prompt", "a <cat> & a dog")) and first_line.endswith("…")
    assert field("seed", "") in caption and field("balance", 9) in caption
    assert not [c for c in tg.fake.calls_to("sendPhoto") if not c.ok]


def test_photo_limits() -> None:
    assert fits_photo(ImageData(_png((1000, 800))), MEDIA)
    assert not fits_photo(ImageData(_png((9000, 1500))), MEDIA)  # side sum over 10000
    assert not fits_photo(ImageData(_png((2100, 100))), MEDIA)   # ratio over 20
    assert not fits_photo(ImageData(_png((10, 10)) + b"\0" * (10 * 2**20)), MEDIA)  # over 10 MB
