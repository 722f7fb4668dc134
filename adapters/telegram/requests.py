"""The ways to ask for an img2img: each handler parses, calls the core and hands off delivery."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import Message

from adapters.telegram.delivery import Target, show
from adapters.telegram.inputs import chat_of, download, find_image, image_in, user_of
from adapters.telegram.replies import esc
from bot.app import App
from bot.following import Following
from bot.i18n import current_locale, t
from bot.jobs import GenerationRequest
from bot.once import PENDING
from bot.parser import parse_caption
from bot.presenter import EXAMPLE


def how_to(private: bool) -> str:
    return t("tg-how-to", example=esc(EXAMPLE)) + (
        "\n" + t("tg-how-to-private") if private else "") + "\n" + t("tg-how-to-help")


async def submit_message(message: Message, bot: Bot, app: App, following: Following,
                         text: str) -> None:
    """The shared path: find the image, parse, download, submit, then follow the job."""
    ref = find_image(message, app.config)
    if ref is None:
        await message.reply(how_to(message.chat.type == "private"))
        return
    parsed = parse_caption(text)
    data = await download(bot, ref, app)
    notices = (t("tg-album"),) if message.media_group_id else ()
    pending = PENDING.get()
    handle = await app.service.submit(GenerationRequest(
        user=user_of(message.from_user, message.sender_chat), chat=chat_of(message.chat),
        image=data, prompt=parsed.prompt, overrides=parsed.overrides,
        origin={"chat_id": message.chat.id, "message_id": message.message_id,
                "file_id": ref.file_id, "notices": list(notices), "locale": current_locale.get()},
        event_id=pending.event_id if pending is not None else None))
    if pending is not None:
        pending.recorded = True
    show(following, bot, handle, Target(message.chat.id, message.message_id), notices)


async def img2img_command(message: Message, bot: Bot, app: App,
                          following: Following) -> None:
    """``/img2img[@bot] prompt`` on a photo or image file, or replying to one."""
    await submit_message(message, bot, app, following, message.text or message.caption or "")


async def private_prompt(message: Message, bot: Bot, app: App, following: Following) -> None:
    """In a private chat, a captioned image needs no command."""
    await submit_message(message, bot, app, following, message.caption or "")


async def private_uncaptioned(message: Message, app: App) -> None:
    """An image alone: say how to ask (album members without a caption are left alone)."""
    image_in(message, app.config)  # a non-image file is told so at once
    await message.reply(t("tg-needs-caption"))


def make_router() -> Router:
    """The catch-all requests: the /img2img command and, in private chats, captioned images."""
    router = Router(name="telegram-requests")
    router.message.register(img2img_command, Command("img2img"))
    private_image = (F.chat.type == "private", F.photo | F.document)
    router.message.register(private_prompt, *private_image, F.caption, ~F.caption.startswith("/"))
    router.message.register(private_uncaptioned, *private_image, ~F.caption,
                            F.media_group_id.is_(None))
    return router
