"""The ways to ask for an img2img: the /img2img command, a captioned image in a private chat,
the buttons under a result (a press is a new request by the presser) and Cancel under the
progress. Each handler parses, calls the core and hands off delivery."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from adapters.telegram.callbacks import CancelJob, RerunJob
from adapters.telegram.delivery import Target, show
from adapters.telegram.inputs import ImageRef, chat_of, download, find_image, image_in, user_of
from adapters.telegram.replies import esc
from bot.app import App
from bot.errors import ImageError
from bot.following import Following
from bot.i18n import Msg, t
from bot.jobs import GenerationRequest
from bot.models import ChatRef, UserRef
from bot.options import Overrides
from bot.parser import parse_caption
from bot.presenter import EXAMPLE
from bot.rerun import Rerun
from bot.service import CancelOutcome

GONE = Msg("tg-result-gone")


def make_router() -> Router:
    """The /img2img command and, in private chats, captioned images; the buttons under progress
    (cancel) and results (reruns); then any other press, which no factory parsed (an old
    format), is told that its button expired."""
    router = Router(name="telegram-requests")
    router.message.register(img2img, Command("img2img"))
    private_image = (F.chat.type == "private", F.photo | F.document)
    router.message.register(img2img, *private_image, F.caption, ~F.caption.startswith("/"))
    router.message.register(private_uncaptioned, *private_image, ~F.caption,
                            F.media_group_id.is_(None))
    router.callback_query.register(cancel_pressed, CancelJob.filter())
    router.callback_query.register(result_pressed, RerunJob.filter())
    router.callback_query.register(expired)
    return router


def how_to(private: bool) -> str:
    return t("tg-how-to", example=esc(EXAMPLE)) + (
        "\n" + t("tg-how-to-private") if private else "") + "\n" + t("tg-how-to-help")


async def submit(bot: Bot, app: App, following: Following, user: UserRef, chat: ChatRef,
                 ref: ImageRef, target: Target, prompt: str, overrides: Overrides,
                 notices: tuple[str, ...] = ()) -> None:
    """Download the image, hand the request to the core and follow the job in the chat."""
    handle = await app.submit(GenerationRequest(
        user=user, chat=chat, image=await download(bot, ref, app), prompt=prompt,
        overrides=overrides, origin={"chat_id": target.chat_id, "message_id": target.reply_to,
                                     "file_id": ref.file_id, "notices": list(notices)}))
    show(following, bot, handle, target, notices)


async def img2img(message: Message, bot: Bot, app: App, following: Following) -> None:
    """``/img2img[@bot] prompt`` on a photo or image file, or replying to one; in a private
    chat, a captioned image needs no command."""
    ref = find_image(message, app.config)
    if ref is None:
        await message.reply(how_to(message.chat.type == "private"))
        return
    parsed = parse_caption(message.text or message.caption or "")
    notices = (t("tg-album"),) if message.media_group_id else ()
    await submit(bot, app, following, user_of(message.from_user, message.sender_chat),
                 chat_of(message.chat), ref, Target(message.chat.id, message.message_id),
                 parsed.prompt, parsed.overrides, notices)


async def private_uncaptioned(message: Message, app: App) -> None:
    """An image alone: say how to ask (album members without a caption are left alone)."""
    image_in(message, app.config)  # a non-image file is told so at once
    await message.reply(t("tg-needs-caption"))


async def cancel_pressed(callback: CallbackQuery, callback_data: CancelJob, app: App) -> None:
    """Cancel: only the requester may, and only while the job is unfinished."""
    outcome = await app.cancel_as(callback_data.job_id, user_of(callback.from_user))
    await callback.answer(outcome.answer.render(), show_alert=outcome is CancelOutcome.NOT_YOURS)


async def result_pressed(callback: CallbackQuery, callback_data: RerunJob, bot: Bot, app: App,
                         following: Following) -> None:
    """🔁 / ➖ / ➕ / ♻️ under a result: the same request again, charged to the presser."""
    result = callback.message
    if not isinstance(result, Message):
        raise ImageError(msg=GONE)
    chat = chat_of(result.chat)
    rerun = await app.plan_rerun(callback_data.job_id, callback_data.action, chat=chat)
    if rerun is None:
        raise ImageError(msg=GONE)
    ref, target = _input_of(result, rerun, app)
    await submit(bot, app, following, user_of(callback.from_user), chat, ref, target,
                 rerun.prompt, rerun.overrides)
    await callback.answer(t("rerun-started"))


async def expired(callback: CallbackQuery) -> None:
    await callback.answer(t("button-expired"), show_alert=True)


def _input_of(result: Message, rerun: Rerun, app: App) -> tuple[ImageRef, Target]:
    """The image to use and the message the new job replies to: ♻️ uses the result itself;
    the other buttons use the request's image, by the file_id stored with the job."""
    origin = rerun.origin
    if rerun.use_result:
        ref = image_in(result, app.config)
        target = Target(result.chat.id, result.message_id)
    else:
        asked = origin.get("message_id")
        target = Target(result.chat.id, int(str(asked)) if asked is not None else None)
        ref = ImageRef(str(origin["file_id"]), None) if origin.get("file_id") else None
    if ref is None:
        raise ImageError(msg=GONE)
    return ref, target
