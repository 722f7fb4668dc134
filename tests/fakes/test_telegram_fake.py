"""The fake Bot API answers real aiogram the way Telegram does, method by method."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command
from aiogram.methods import SendMessage
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BufferedInputFile,
    CallbackQuery,
    ChatMemberAdministrator,
    ChatMemberMember,
    ChatMemberOwner,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
    ReplyParameters,
    Update,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from PIL import Image

from tests.fakes.server import jpeg_bytes, png_bytes
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.fakes.telegram_limits import FloodLimits
from tests.fakes.telegram_updates import GROUP_ID, USER_ID

CHAT = USER_ID  # a private chat's id is its user's id


def keyboard(*labels: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[
        [InlineKeyboardButton(text=label, callback_data=f"cb:{label}") for label in labels]])


def image_of(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("1", size).save(buf, "PNG")  # 1-bit keeps huge canvases cheap
    return buf.getvalue()


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    server.add_chat(CHAT)
    yield server
    await server.stop()


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    client = fake.make_bot()
    yield client
    await client.session.close()


async def test_get_me_and_error_format(fake: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123456, "img2img_test_bot", True)
    intruder = Bot("999:WRONG", session=bot.session)
    with pytest.raises(TelegramUnauthorizedError):
        await intruder.get_me()
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{fake.base_url}/bot999:WRONG/getMe") as resp:
            assert resp.status == 401
            assert await resp.json() == {"ok": False, "error_code": 401,
                                         "description": "Unauthorized"}
        async with http.get(f"{fake.base_url}/bot{TOKEN}/noSuchMethod") as resp:
            assert resp.status == 404
            assert (await resp.json())["description"] == "Not Found"
        # The Bot API also takes JSON bodies and query strings, with any letter case.
        url = f"{fake.base_url}/bot{TOKEN}/SENDMESSAGE"
        async with http.post(url, json={"chat_id": CHAT, "text": "json"}) as resp:
            assert (await resp.json())["result"]["text"] == "json"
        async with http.get(url, params={"chat_id": str(CHAT), "text": "query"}) as resp:
            assert resp.status == 200
    assert fake.texts(CHAT) == ["json", "query"]


async def test_send_message_builds_the_chat_model(fake: FakeTelegram, bot: Bot) -> None:
    request = fake.push_update(fake.build.text("/start"))
    sent = await bot.send_message(
        CHAT, "<b>Hi</b> &lt;3 &amp; welcome", parse_mode="HTML",
        reply_markup=keyboard("Again", "Cancel"),
        reply_parameters=ReplyParameters(message_id=request["message"]["message_id"]))
    assert sent.text == "Hi <3 & welcome"
    assert sent.reply_to_message is not None and sent.reply_to_message.text == "/start"
    msg = fake.last_message(CHAT)
    assert msg is not None and msg.kind == "text" and msg.parse_mode == "HTML"
    assert msg.entities == [{"type": "bold", "offset": 0, "length": 2}]
    assert msg.reply_to_message_id == request["message"]["message_id"]
    assert msg.button_texts == ["Again", "Cancel"]
    assert msg.button("Cancel")["callback_data"] == "cb:Cancel"
    assert msg.message_id == request["message"]["message_id"] + 1  # ids are per chat
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(424242, "nobody")
    fake.block(CHAT)
    with pytest.raises(TelegramForbiddenError, match="blocked"):
        await bot.send_message(CHAT, "blocked")


@pytest.mark.parametrize(("text", "mode", "error"), [
    ("a < b", "HTML", 'Unsupported start tag "" at byte offset 2'),
    ("<p>x</p>", "HTML", 'Unsupported start tag "p" at byte offset 0'),
    ("<b>x", "HTML", 'Can\'t find end tag corresponding to start tag "b"'),
    ("<b>x</i>", "HTML", "Unmatched end tag at byte offset 4"),
    ("x </b>", "HTML", "Unexpected end tag at byte offset 2"),
    ("1.5", "MarkdownV2", "Character '.' is reserved"),
    ("*bold", "MarkdownV2", "Can't find end of Bold entity at byte offset 0"),
    ("_x", "Markdown", "Can't find end of the entity starting at byte offset 0"),
])
async def test_unparsable_markup_is_refused(bot: Bot, text: str, mode: str, error: str) -> None:
    with pytest.raises(TelegramBadRequest, match="can't parse entities") as info:
        await bot.send_message(CHAT, text, parse_mode=mode)
    assert error in info.value.message


async def test_text_limits(fake: FakeTelegram, bot: Bot) -> None:
    ok = await bot.send_message(CHAT, "x" * 4096)
    assert ok.text is not None and len(ok.text) == 4096
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(CHAT, "x" * 4097)
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(CHAT, "<b> </b>", parse_mode="HTML")
    photo = BufferedInputFile(png_bytes(), "a.png")
    await bot.send_photo(CHAT, photo, caption="<i>" + "é" * 1024 + "</i>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(CHAT, photo, caption="y" * 1025)
    spaced = await bot.send_message(CHAT, "  <b>padded</b>  \n", parse_mode="HTML")
    assert spaced.text == "padded" and spaced.entities and spaced.entities[0].offset == 0
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(CHAT, "k", reply_markup=InlineKeyboardMarkup(inline_keyboard=[
            [InlineKeyboardButton(text="big", callback_data="z" * 65)]]))


async def test_send_photo_keeps_bytes_and_enforces_limits(fake: FakeTelegram, bot: Bot) -> None:
    data = png_bytes((120, 80))
    sent = await bot.send_photo(CHAT, BufferedInputFile(data, "result.png"), caption="done")
    assert sent.photo is not None and (sent.photo[-1].width, sent.photo[-1].height) == (120, 80)
    photo = fake.last_photo(CHAT)
    assert photo is not None and photo.data == data and photo.filename == "result.png"
    assert photo.caption == "done" and fake.counts["sendPhoto"] == 1
    assert fake.photo_sends == [photo]
    # The bot can download what it sent (the "use this result" button needs that).
    assert (await bot.download(sent.photo[-1].file_id)).read() == data  # type: ignore[union-attr]
    for size in [(9000, 1001), (21, 1), (1, 500)]:
        with pytest.raises(TelegramBadRequest, match="PHOTO_INVALID_DIMENSIONS"):
            await bot.send_photo(CHAT, BufferedInputFile(image_of(size), "big.png"))
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(CHAT, BufferedInputFile(b"not an image", "x.jpg"))
    with pytest.raises(TelegramBadRequest, match="PHOTO_SAVE_FILE_INVALID"):
        await bot.send_photo(CHAT, BufferedInputFile(b"\xff" * (10 * 2**20 + 1), "x.jpg"))
    assert len(fake.photos(CHAT)) == 1
    # Resending by file_id works; an unknown file_id is refused.
    await bot.send_photo(CHAT, sent.photo[-1].file_id)
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(CHAT, "no-such-file")


async def test_send_document_and_media_group(fake: FakeTelegram, bot: Bot) -> None:
    data = png_bytes((30, 30))
    sent = await bot.send_document(CHAT, BufferedInputFile(data, "full.png"), caption="full")
    assert sent.document is not None and sent.document.mime_type == "image/png"
    doc = fake.last_document(CHAT)
    assert doc is not None and (doc.data, doc.filename, doc.caption) == (data, "full.png", "full")
    with pytest.raises(TelegramEntityTooLarge):
        await bot.send_document(CHAT, BufferedInputFile(b"\0" * (50 * 2**20 + 1), "huge.bin"))
    album = await bot.send_media_group(CHAT, [
        InputMediaPhoto(media=BufferedInputFile(png_bytes(), "1.png"), caption="first"),
        InputMediaPhoto(media=BufferedInputFile(jpeg_bytes(), "2.jpg"))])
    assert len(album) == 2 and album[0].media_group_id == album[1].media_group_id
    assert [m.caption for m in fake.photos(CHAT)] == ["first", None]


async def test_edits_follow_the_real_rules(fake: FakeTelegram, bot: Bot) -> None:
    status = await bot.send_message(CHAT, "Queued #2", reply_markup=keyboard("Cancel"))
    edited = await bot.edit_message_text("Generating 40%", chat_id=CHAT,
                                         message_id=status.message_id,
                                         reply_markup=keyboard("Cancel"))
    assert isinstance(edited, Message) and edited.edit_date is not None
    msg = fake.message(CHAT, status.message_id)
    assert msg.text == "Generating 40%" and [h["text"] for h in msg.history] == ["Queued #2"]
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("Generating 40%", chat_id=CHAT,
                                    message_id=status.message_id,
                                    reply_markup=keyboard("Cancel"))
    # Editing the text without reply_markup removes the keyboard, as Telegram does.
    await bot.edit_message_text("Done", chat_id=CHAT, message_id=status.message_id)
    assert msg.buttons == []
    await bot.edit_message_reply_markup(chat_id=CHAT, message_id=status.message_id,
                                        reply_markup=keyboard("Again"))
    assert msg.button_texts == ["Again"]
    with pytest.raises(TelegramBadRequest, match="there is no caption in the message to edit"):
        await bot.edit_message_caption(chat_id=CHAT, message_id=status.message_id, caption="c")
    photo = await bot.send_photo(CHAT, BufferedInputFile(png_bytes(), "a.png"), caption="old")
    with pytest.raises(TelegramBadRequest, match="there is no text in the message to edit"):
        await bot.edit_message_text("t", chat_id=CHAT, message_id=photo.message_id)
    await bot.edit_message_caption(chat_id=CHAT, message_id=photo.message_id, caption="new")
    new_image = jpeg_bytes((50, 50))
    await bot.edit_message_media(InputMediaPhoto(media=BufferedInputFile(new_image, "b.jpg"),
                                                 caption="swapped"),
                                 chat_id=CHAT, message_id=photo.message_id)
    swapped = fake.message(CHAT, photo.message_id)
    assert (swapped.caption, swapped.data, swapped.width) == ("swapped", new_image, 50)
    request = fake.push_update(fake.build.text("hello"))
    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_text("x", chat_id=CHAT,
                                    message_id=request["message"]["message_id"])
    await bot.delete_message(CHAT, status.message_id)
    fake.delete_as_user(CHAT, photo.message_id)  # the user removed it in their app
    for message_id in (status.message_id, photo.message_id, 9999):
        with pytest.raises(TelegramBadRequest, match="message to edit not found"):
            await bot.edit_message_text("late", chat_id=CHAT, message_id=message_id)


async def test_delete_and_reply_to_deleted(fake: FakeTelegram, bot: Bot) -> None:
    request = fake.build.photo(caption="/img2img cat")
    request_id = request["message"]["message_id"]
    status = await bot.send_message(CHAT, "working", reply_parameters=ReplyParameters(
        message_id=request_id))
    assert await bot.delete_message(CHAT, status.message_id) is True
    assert fake.messages(CHAT) == [] and fake.texts(CHAT) == []
    assert fake.messages(CHAT, include_deleted=True)[0].deleted
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(CHAT, status.message_id)
    await bot.delete_message(CHAT, request_id)  # a user's message, in a private chat
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(CHAT, "result", reply_parameters=ReplyParameters(
            message_id=request_id))
    sent = await bot.send_message(CHAT, "result", reply_parameters=ReplyParameters(
        message_id=request_id, allow_sending_without_reply=True))
    assert sent.reply_to_message is None


async def test_chat_actions_and_callback_answers(fake: FakeTelegram, bot: Bot) -> None:
    assert await bot.send_chat_action(CHAT, "upload_photo") is True
    assert fake.actions(CHAT) == ["upload_photo"]
    with pytest.raises(TelegramBadRequest, match="wrong parameter action"):
        await bot.send_chat_action(CHAT, "dancing")
    status = await bot.send_message(CHAT, "result", reply_markup=keyboard("Again"))
    press = fake.push_update(fake.build.press(fake.message(CHAT, status.message_id), "Again"))
    query_id = press["callback_query"]["id"]
    assert press["callback_query"]["data"] == "cb:Again"
    await bot.answer_callback_query(query_id, text="Not enough credits", show_alert=True)
    assert fake.callback_answers == [{"callback_query_id": query_id, "text": "Not enough credits",
                                      "show_alert": True, "url": None, "cache_time": 0}]
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query_id)


async def test_commands_per_scope(fake: FakeTelegram, bot: Bot) -> None:
    private = [BotCommand(command="start", description="Welcome"),
               BotCommand(command="img2img", description="Transform a photo")]
    admins = [BotCommand(command="chatset", description="Chat defaults")]
    await bot.set_my_commands(private, scope=BotCommandScopeAllPrivateChats())
    await bot.set_my_commands(private[1:], scope=BotCommandScopeAllGroupChats())
    await bot.set_my_commands(admins, scope=BotCommandScopeAllChatAdministrators())
    assert [c["command"] for c in fake.commands("all_private_chats")] == ["start", "img2img"]
    assert fake.commands("all_chat_administrators") == [
        {"command": "chatset", "description": "Chat defaults"}]
    got = await bot.get_my_commands(scope=BotCommandScopeAllGroupChats())
    assert [c.command for c in got] == ["img2img"]
    assert await bot.get_my_commands() == []
    await bot.delete_my_commands(scope=BotCommandScopeAllGroupChats())
    assert fake.commands("all_group_chats") == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad-Name", description="x")])


async def test_files_and_download(fake: FakeTelegram, bot: Bot) -> None:
    data = jpeg_bytes()
    fake.add_file("input-1", data)
    info = await bot.get_file("input-1")
    assert info.file_size == len(data) and info.file_path
    assert (await bot.download("input-1")).read() == data  # type: ignore[union-attr]
    assert fake.downloads == [info.file_path]
    fake.add_file("huge", b"x", file_size=20 * 2**20 + 1)
    with pytest.raises(TelegramBadRequest, match="file is too big"):
        await bot.get_file("huge")
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("missing")


async def test_members_and_chat_info(fake: FakeTelegram, bot: Bot) -> None:
    fake.add_chat(GROUP_ID, title="Artists")
    fake.set_member(GROUP_ID, 1, "creator")
    fake.set_member(GROUP_ID, 2, "administrator")
    fake.set_member(GROUP_ID, 3, "member")
    assert isinstance(await bot.get_chat_member(GROUP_ID, 1), ChatMemberOwner)
    assert isinstance(await bot.get_chat_member(GROUP_ID, 2), ChatMemberAdministrator)
    assert isinstance(await bot.get_chat_member(GROUP_ID, 3), ChatMemberMember)
    admins = await bot.get_chat_administrators(GROUP_ID)
    assert sorted(a.user.id for a in admins) == [1, 2]
    chat = await bot.get_chat(GROUP_ID)
    assert (chat.type, chat.title) == ("supergroup", "Artists")
    with pytest.raises(TelegramBadRequest, match="no administrators in the private chat"):
        await bot.get_chat_administrators(CHAT)
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.get_chat_member(-100999, 1)
    request = fake.push_update(fake.build.text("/img2img x", chat_id=GROUP_ID, user_id=3))
    with pytest.raises(TelegramBadRequest, match="message can't be deleted"):
        await bot.delete_message(GROUP_ID, request["message"]["message_id"])
    fake.set_member(GROUP_ID, fake.bot_id, "administrator")
    assert (await bot.get_chat_member(GROUP_ID, fake.bot_id)).user.is_bot
    await bot.delete_message(GROUP_ID, request["message"]["message_id"])


async def test_fail_next(fake: FakeTelegram, bot: Bot) -> None:
    photo = BufferedInputFile(png_bytes(), "r.png")
    fake.fail_next("sendPhoto", 429, retry_after=1)
    with pytest.raises(TelegramRetryAfter) as info:
        await bot.send_photo(CHAT, photo)
    assert info.value.retry_after == 1
    assert "Too Many Requests: retry after 1" in info.value.message
    await bot.send_photo(CHAT, photo)
    assert [c.status for c in fake.calls_to("sendPhoto")] == [429, 200]
    assert len(fake.photos(CHAT)) == 1  # the refused call changed nothing
    fake.fail_next("*", 502, times=2)
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await bot.send_message(CHAT, "x")
    fake.fail_next("sendmessage", 400, "Bad Request: group chat was upgraded to a supergroup "
                   "chat", migrate_to_chat_id=-100777)
    with pytest.raises(TelegramMigrateToChat) as migrated:
        await bot.send_message(CHAT, "x")
    assert migrated.value.migrate_to_chat_id == -100777
    assert (await bot.send_message(CHAT, "fine")).text == "fine"


async def test_builders_produce_valid_updates(fake: FakeTelegram, bot: Bot) -> None:
    big = jpeg_bytes((1000, 750))
    photo = fake.build.photo(big, caption="/img2img@img2img_test_bot a cat --strength 0.6")
    sizes = photo["message"]["photo"]
    assert [s["width"] for s in sizes] == [90, 320, 800, 1000]
    assert [s["file_size"] for s in sizes] == sorted(s["file_size"] for s in sizes)
    assert photo["message"]["caption_entities"] == [
        {"type": "bot_command", "offset": 0, "length": 25}]
    assert (await bot.download(sizes[-1]["file_id"])).read() == big  # type: ignore[union-attr]
    claimed = fake.build.photo(big, file_size=25 * 2**20)["message"]["photo"]
    with pytest.raises(TelegramBadRequest, match="file is too big"):
        await bot.get_file(claimed[-1]["file_id"])
    await bot.get_file(claimed[-2]["file_id"])
    document = fake.build.document(png_bytes(), file_name="scan.png", caption="/img2img x",
                                   chat_id=GROUP_ID)
    assert document["message"]["document"]["mime_type"] == "image/png"
    reply = fake.build.reply(photo, "/img2img make it blue")
    assert reply["message"]["reply_to_message"]["photo"] == sizes
    album = fake.build.album([jpeg_bytes(), jpeg_bytes(), jpeg_bytes()], caption="/img2img x",
                             caption_index=1)
    assert len({u["message"]["media_group_id"] for u in album}) == 1
    assert [("caption" in u["message"]) for u in album] == [False, True, False]
    anon = fake.build.text("/chatset nsfw off", chat_id=GROUP_ID, anonymous_admin=True)
    assert anon["message"]["from"]["id"] == 1087968824
    assert anon["message"]["sender_chat"]["id"] == GROUP_ID
    sent = await bot.send_photo(CHAT, BufferedInputFile(png_bytes(), "r.png"),
                                reply_markup=keyboard("Again"))
    press = fake.build.press(fake.message(CHAT, sent.message_id), "Again", user_id=77)
    ids = [u["update_id"] for u in [photo, document, reply, *album, anon, press]]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for raw in [photo, document, reply, *album, anon, press]:
        Update.model_validate(raw, context={"bot": bot})  # aiogram accepts every one


def img2img_router(done: asyncio.Event) -> Router:
    router = Router()

    @router.message(Command("img2img"), F.photo)
    async def img2img(message: Message, bot: Bot) -> None:
        await bot.send_chat_action(message.chat.id, "upload_photo")
        data = await bot.download(message.photo[-1])  # type: ignore[index]
        assert data is not None
        await message.reply_photo(BufferedInputFile(data.read(), "result.jpg"),
                                  caption="result", reply_markup=keyboard("Again"))

    @router.callback_query(F.data == "cb:Again")
    async def again(query: CallbackQuery) -> None:
        await query.answer("Queued")
        done.set()

    return router


async def test_polling_dispatcher(fake: FakeTelegram, bot: Bot) -> None:
    done = asyncio.Event()
    dp = Dispatcher()
    dp.include_router(img2img_router(done))
    source = jpeg_bytes((64, 48))
    request = fake.push_update(fake.build.photo(source, caption="/img2img a cat"))
    polling = asyncio.create_task(dp.start_polling(bot, polling_timeout=1, handle_signals=False))
    try:
        result = await fake.wait_for_photo(CHAT)
        assert result.data == source and result.reply_to_message_id == request["message"][
            "message_id"]
        fake.push_update(fake.build.press(result, "Again"))
        await asyncio.wait_for(done.wait(), 5)
        await fake.wait_until_consumed()
    finally:
        await fake.wait_for_call("getUpdates")  # stop_polling() refuses before polling starts
        await dp.stop_polling()
        await polling
    assert fake.actions(CHAT) == ["upload_photo"]
    assert fake.callback_answers[0]["text"] == "Queued"
    assert set(fake.allowed_updates or []) == {"message", "callback_query"}
    offsets = [c.params.get("offset") for c in fake.calls_to("getUpdates")]
    assert request["update_id"] + 1 in offsets
    assert len(fake.reply_latencies()) == 1 and 0 < fake.reply_latencies()[0] < 5


async def test_redelivery_and_allowed_updates(fake: FakeTelegram, bot: Bot) -> None:
    first = fake.push_update(fake.build.text("/balance"))
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [first["update_id"]]
    assert await bot.get_updates(offset=first["update_id"] + 1, timeout=0) == []
    fake.push_update(first, redeliver=True)  # Telegram sends it again after a crash
    again = await bot.get_updates(offset=first["update_id"] + 1, timeout=0)
    assert [u.update_id for u in again] == [first["update_id"]]
    sent = await bot.send_message(CHAT, "menu", reply_markup=keyboard("A"))
    fake.push_update(fake.build.press(fake.message(CHAT, sent.message_id), "A"))
    text = fake.push_update(fake.build.text("hi"))
    got = await bot.get_updates(offset=first["update_id"] + 1, allowed_updates=["message"],
                                timeout=0)
    assert [u.update_id for u in got] == [text["update_id"]]
    assert [("callback_query" in u) for u in fake.dropped_updates] == [True]
    fake.long_poll = 0.1
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await bot.get_updates(offset=text["update_id"] + 1, timeout=30) == []
    assert 0.1 <= loop.time() - started < 1  # long polls are capped at fake.long_poll


async def test_a_second_poller_terminates_the_first(fake: FakeTelegram, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await fake.wait_for_call("getUpdates")
    assert await bot.get_updates(timeout=0) == []
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await first


async def webhook_app(bot: Bot, dp: Dispatcher, secret: str,
                      background: bool) -> tuple[web.AppRunner, str]:
    app = web.Application()
    SimpleRequestHandler(dp, bot, secret_token=secret,
                         handle_in_background=background).register(app, path="/hook")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/hook"


async def test_webhook_mode(fake: FakeTelegram, bot: Bot) -> None:
    dp = Dispatcher()

    @dp.message(Command("start"))
    async def start(message: Message) -> SendMessage:
        return message.answer("welcome")  # answered in the webhook reply itself

    runner, url = await webhook_app(bot, dp, "s3cr3t_token", background=False)
    try:
        with pytest.raises(TelegramBadRequest, match="secret token contains unallowed"):
            await bot.set_webhook(url, secret_token="bad secret!")
        await bot.set_webhook(url, secret_token="s3cr3t_token")
        info = await bot.get_webhook_info()
        assert info.url == url and info.pending_update_count == 0
        with pytest.raises(TelegramConflictError):
            await bot.get_updates()
        update = fake.build.text("/start")
        assert await fake.deliver_webhook(url, update, "wrong") == 401
        assert await fake.deliver_webhook(None, update, None) == 401
        assert fake.texts(CHAT) == []
        assert await fake.deliver_webhook(url, update, "s3cr3t_token") == 200
        assert fake.texts(CHAT) == ["welcome"]
        fake.push_update(fake.build.text("/start"))  # queued updates go to the webhook
        await fake.wait_until_consumed()
        assert fake.texts(CHAT) == ["welcome", "welcome"]
        await bot.delete_webhook(drop_pending_updates=True)
        assert (await bot.get_webhook_info()).url == ""
    finally:
        await runner.cleanup()


async def test_flood_limits_answer_429_with_retry_after(fake: FakeTelegram, bot: Bot) -> None:
    fake.add_chat(-100777, title="Busy group")
    fake.limits = FloodLimits(chat_per_second=100.0, group_per_minute=60.0, group_burst=3)
    for n in range(3):  # a quiet group takes its burst at once
        await bot.send_message(-100777, f"hello {n}")
    await bot.send_chat_action(-100777, "typing")  # actions are not counted
    with pytest.raises(TelegramRetryAfter) as refused:
        await bot.send_message(-100777, "one too many")
    assert refused.value.retry_after == 1
    assert fake.limits.refused == [("sendMessage", -100777)]
    await asyncio.sleep(1.0)  # one message a second drains back in
    await bot.send_message(-100777, "after the wait")
    await bot.send_message(CHAT, "another chat is not held up")
