"""Every way to ask for an img2img, in private chats and groups, end to end."""

from __future__ import annotations

from bot.presenter import EXAMPLE
from tests.fakes.server import jpeg_bytes, png_bytes
from tests.telegram.conftest import GROUP_ID, USER_ID, Harness, image_size
from tests.texts import en, field, plain


def _downloaded(tg: Harness, file_id: str) -> bool:
    return tg.fake.files[file_id].file_path in tg.fake.downloads


async def test_photo_with_command_caption_in_private(tg: Harness) -> None:
    request = tg.send(tg.fake.build.photo(jpeg_bytes((640, 480)),
                                          caption="/img2img a <b>cat</b> --strength 0.5"))
    result = await tg.result(request)
    assert result.kind == "photo"
    body = tg.a1111.img2img_bodies[0]
    assert image_size(result.data) == (body["width"], body["height"])
    assert body["denoising_strength"] == 0.5 and body["prompt"].startswith("a <b>cat</b>")
    assert result.caption is not None
    assert field("prompt", "a <b>cat</b>") in result.caption  # escaped on the way, shown verbatim
    assert field("strength", 0.5) in result.caption
    assert field("provider", "Test WebUI") in result.caption
    assert field("cost", 1) in result.caption and field("balance", 9) in result.caption
    again = result.button(en("dc-button-again"))["callback_data"]
    job = await tg.app.storage.get_job(again.split(":")[2])
    assert job is not None and field("seed", job.seed) in result.caption
    assert result.button_texts == [en(f"tg-button-{b}") for b in ("again", "reuse", "weaker",
                                                                  "stronger")]
    await tg.settled()
    assert await tg.ledger() == [("initial", 10), ("reserve", -1)]
    await tg.assert_ledger_consistent()
    assert "upload_photo" in tg.fake.actions(USER_ID)
    # The status reply was there while it ran, and is gone once the result is out.
    statuses = [m for m in tg.fake.messages(USER_ID, include_deleted=True) if m.kind == "text"]
    assert len(statuses) == 1 and statuses[0].deleted


async def test_photo_with_command_for_this_bot_in_a_group(tg: Harness) -> None:
    request = tg.send(tg.fake.build.photo(caption="/img2img@img2img_test_bot a castle",
                                          chat_id=GROUP_ID))
    result = await tg.result(request)
    assert result.chat_id == GROUP_ID and field("prompt", "a castle") in (result.caption or "")
    assert await tg.balance() == 9
    # A command for another bot is not ours.
    other = tg.send(tg.fake.build.photo(caption="/img2img@other_bot a castle",
                                        chat_id=GROUP_ID))
    await tg.fake.wait_until_consumed()
    await tg.idle()
    assert not [m for m in tg.fake.messages(GROUP_ID)
                if m.reply_to_message_id == other["message"]["message_id"]]
    assert len(tg.a1111.img2img_bodies) == 1


async def test_image_file_is_used_at_full_resolution(tg: Harness) -> None:
    original = png_bytes((1500, 1000))
    request = tg.send(tg.fake.build.document(original, file_name="scan.png",
                                             caption="/img2img an ink drawing"))
    result = await tg.result(request)
    assert _downloaded(tg, request["message"]["document"]["file_id"])
    assert field("prompt", "an ink drawing") in (result.caption or "")
    body = tg.a1111.img2img_bodies[0]
    assert body["width"] / body["height"] == 1.5  # the file's shape, not a thumbnail's


async def test_reply_to_a_photo_or_file_with_the_command(tg: Harness) -> None:
    photo = tg.send(tg.fake.build.photo(chat_id=GROUP_ID))
    request = tg.send(tg.fake.build.reply(photo, "/img2img make it night"))
    result = await tg.result(request)
    assert result.chat_id == GROUP_ID and field("prompt", "make it night") in (result.caption or "")
    assert _downloaded(tg, photo["message"]["photo"][-1]["file_id"])
    document = tg.send(tg.fake.build.document(png_bytes((300, 200)), file_name="a.png"))
    again = tg.send(tg.fake.build.reply(document, "/img2img pastel colours"))
    await tg.result(again)
    assert _downloaded(tg, document["message"]["document"]["file_id"])
    assert await tg.balance() == 8


async def test_private_photo_with_just_a_prompt(tg: Harness) -> None:
    request = tg.send(tg.fake.build.photo(caption="a dog's face, oil painting --steps 20"))
    result = await tg.result(request)
    assert field("prompt", "a dog's face, oil painting") in (result.caption or "")
    assert tg.a1111.img2img_bodies[0]["steps"] == 20
    # In a group the same caption is left alone: members share photos all day.
    tg.send(tg.fake.build.photo(caption="a dog's face", chat_id=GROUP_ID))
    await tg.fake.wait_until_consumed()
    await tg.idle()
    assert tg.fake.messages(GROUP_ID) == [] and len(tg.a1111.img2img_bodies) == 1


async def test_private_photo_without_caption_gets_a_hint(tg: Harness) -> None:
    request = tg.send(tg.fake.build.photo())
    hint = await tg.reply(request)
    assert hint.text == plain("tg-needs-caption") and not tg.a1111.img2img_bodies


async def test_album_uses_the_captioned_photo_and_says_so(tg: Harness) -> None:
    images = [jpeg_bytes((300, 200)), jpeg_bytes((200, 300)), jpeg_bytes((400, 400))]
    album = tg.fake.build.album(images, caption="/img2img a mosaic", caption_index=1)
    for update in album:
        tg.send(update)
    result = await tg.result(album[1])
    assert en("tg-album") in (result.caption or "")
    await tg.settled()
    assert len(tg.a1111.img2img_bodies) == 1 and await tg.balance() == 9
    assert _downloaded(tg, album[1]["message"]["photo"][-1]["file_id"])
    assert not _downloaded(tg, album[0]["message"]["photo"][-1]["file_id"])
    assert len(tg.fake.messages(USER_ID)) == 1  # no hint for the uncaptioned members


async def test_command_without_an_image_explains_with_an_example(tg: Harness) -> None:
    for chat in (USER_ID, GROUP_ID):
        request = tg.send(tg.fake.build.text("/img2img a cat", chat_id=chat))
        answer = await tg.reply(request)
        assert (answer.text or "").startswith(plain("tg-how-to", example=EXAMPLE))
    assert await tg.balance() is None and not tg.a1111.img2img_bodies


async def test_largest_photo_size_that_fits_is_used(tg: Harness) -> None:
    request = tg.send(tg.fake.build.photo(jpeg_bytes((1000, 750)), file_size=25 * 2**20,
                                          caption="/img2img a fox"))
    await tg.result(request)
    sizes = request["message"]["photo"]
    assert [s["width"] for s in sizes] == [90, 320, 800, 1000]
    assert _downloaded(tg, sizes[2]["file_id"]) and not _downloaded(tg, sizes[3]["file_id"])
    assert [c.params["file_id"] for c in tg.fake.calls_to("getFile")] == [sizes[2]["file_id"]]
