"""Every way to ask for an img2img, in private chats and groups, end to end."""

from __future__ import annotations

from tests.fakes.server import jpeg_bytes
from tests.telegram.conftest import USER_ID, Harness, image_size


async def test_photo_with_command_caption_in_private(tg: Harness) -> None:
    request = tg.send(tg.fake.build.photo(jpeg_bytes((640, 480)),
                                          caption="/img2img a <b>cat</b> --strength 0.5"))
    result = await tg.result(request)
    assert result.kind == "photo"
    body = tg.a1111.img2img_bodies[0]
    assert image_size(result.data) == (body["width"], body["height"])
    assert result.caption is not None
    assert "Prompt: a <b>cat</b>" in result.caption
    assert "Strength: 0.5" in result.caption and "Provider: Test WebUI" in result.caption
    assert "Cost: 1" in result.caption and "Balance: 9" in result.caption
    assert result.button_texts == ["🔁 Again", "♻️ Use as input", "➖ Strength", "➕ Strength"]
    assert await tg.balance() == 9
    await tg.idle()
    assert await tg.ledger() == [("initial", 10), ("reserve", -1)]
    await tg.assert_ledger_consistent()
    assert body["denoising_strength"] == 0.5
    assert "upload_photo" in tg.fake.actions(USER_ID)
