"""Buttons under results and progress: a press is a new request (or a cancel) by the presser."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.types import CallbackQuery, Message

from adapters.telegram.callbacks import CancelJob, RerunJob
from adapters.telegram.delivery import Target, show
from adapters.telegram.inputs import ImageRef, chat_of, download, image_in, user_of
from bot.app import App
from bot.errors import ImageError
from bot.following import Following
from bot.i18n import Msg, current_locale, t
from bot.jobs import GenerationRequest
from bot.rerun import Rerun
from bot.service import CancelOutcome

GONE = Msg("tg-result-gone")
CANCEL_ANSWERS = {CancelOutcome.CANCELLED: "cancel-done",
                  CancelOutcome.NOT_YOURS: "cancel-not-yours",
                  CancelOutcome.FINISHED: "cancel-finished",
                  CancelOutcome.TOO_LATE: "cancel-too-late"}


def make_router() -> Router:
    """The buttons under progress (cancel) and under results (reruns); then any other press,
    which no factory parsed (an old format), is told that its button expired."""
    router = Router(name="telegram-buttons")
    router.callback_query.register(cancel_pressed, CancelJob.filter())
    router.callback_query.register(result_pressed, RerunJob.filter())
    router.callback_query.register(expired)
    return router


async def cancel_pressed(callback: CallbackQuery, callback_data: CancelJob, app: App) -> None:
    """Cancel: only the requester may, and only while the job is unfinished."""
    outcome = await app.cancel_as(callback_data.job_id, user_of(callback.from_user))
    await callback.answer(t(CANCEL_ANSWERS[outcome]),
                          show_alert=outcome is CancelOutcome.NOT_YOURS)


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
    handle = await app.service.submit(GenerationRequest(
        user=user_of(callback.from_user), chat=chat, image=await download(bot, ref, app),
        prompt=rerun.prompt, overrides=rerun.overrides,
        origin={"chat_id": result.chat.id, "message_id": target.reply_to, "file_id": ref.file_id,
                "locale": current_locale.get()}))
    await callback.answer(t("rerun-started"))
    show(following, bot, handle, target)


async def expired(callback: CallbackQuery) -> None:
    await callback.answer(t("button-expired"), show_alert=True)


def _input_of(result: Message, rerun: Rerun, app: App) -> tuple[ImageRef, Target]:
    """The image to use and the message the new job replies to.

    ♻️ uses the result itself; the other buttons use the request's image, found on the
    message the result replies to, else by the file_id stored with the job.
    """
    if rerun.use_result:
        ref = image_in(result, app.config)
        if ref is None:
            raise ImageError(msg=GONE)
        return ref, Target(result.chat.id, result.message_id)
    request = result.reply_to_message
    ref = image_in(request, app.config) if request is not None else None
    origin_id = rerun.origin.get("message_id")
    reply_to = request.message_id if request is not None else (
        int(str(origin_id)) if origin_id is not None else None)
    if ref is None:
        file_id = rerun.origin.get("file_id")
        if not file_id:
            raise ImageError(msg=GONE)
        ref = ImageRef(str(file_id), None, reply_to or result.message_id)
    return ref, Target(result.chat.id, reply_to)
