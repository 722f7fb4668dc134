"""Buttons under results and progress: a press is a new request (or a cancel) by the presser."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.types import CallbackQuery, Message

from adapters.telegram.delivery import Target, show
from adapters.telegram.inputs import ImageRef, chat_of, download, image_in, user_of
from adapters.telegram.replies import answer_error
from bot.app import App
from bot.errors import BotError, ImageError
from bot.following import Following
from bot.i18n import t
from bot.jobs import GenerationRequest
from bot.rerun import Action, Rerun
from bot.service import CancelOutcome

GONE = "This result is too old to reuse; please send the image again."


CANCEL_ANSWERS = {CancelOutcome.CANCELLED: "cancel-done",
                  CancelOutcome.NOT_YOURS: "cancel-not-yours",
                  CancelOutcome.FINISHED: "cancel-finished",
                  CancelOutcome.TOO_LATE: "cancel-too-late"}


def make_router() -> Router:
    """The buttons under progress (cancel) and under results (reruns)."""
    router = Router(name="telegram-buttons")
    router.callback_query.register(cancel_pressed, F.data.startswith("c:"))
    router.callback_query.register(result_pressed, F.data.startswith("r:"))
    return router


async def cancel_pressed(callback: CallbackQuery, app: App) -> None:
    """Cancel: only the requester may, and only while the job is unfinished."""
    job_id = (callback.data or "")[2:]
    outcome = await app.cancel_as(job_id, user_of(callback.from_user))
    await callback.answer(t(CANCEL_ANSWERS[outcome]),
                          show_alert=outcome is CancelOutcome.NOT_YOURS)


async def result_pressed(callback: CallbackQuery, bot: Bot, app: App,
                         following: Following) -> None:
    """🔁 / ➖ / ➕ / ♻️ under a result: the same request again, charged to the presser."""
    _, _, rest = (callback.data or "").partition(":")
    action_name, _, job_id = rest.partition(":")
    result = callback.message
    if action_name not in {a.value for a in Action} or not isinstance(result, Message):
        await callback.answer(GONE, show_alert=True)
        return
    try:
        rerun = await app.plan_rerun(job_id, Action(action_name), chat=chat_of(result.chat))
        if rerun is None:
            raise ImageError(GONE)
        ref, target = _input_of(result, rerun, app)
        data = await download(bot, ref, app)
        handle = await app.service.submit(GenerationRequest(
            user=user_of(callback.from_user), chat=chat_of(result.chat), image=data,
            prompt=rerun.prompt, overrides=rerun.overrides,
            origin={"chat_id": result.chat.id, "message_id": target.reply_to,
                    "file_id": ref.file_id}))
    except BotError as exc:
        await answer_error(callback, exc)
        return
    await callback.answer(t("rerun-started"))
    show(following, bot, handle, target)


def _input_of(result: Message, rerun: Rerun, app: App) -> tuple[ImageRef, Target]:
    """The image to use and the message the new job replies to.

    ♻️ uses the result itself; the other buttons use the request's image, found on the
    message the result replies to, else by the file_id stored with the job.
    """
    if rerun.use_result:
        ref = image_in(result, app.config)
        if ref is None:
            raise ImageError(GONE)
        return ref, Target(result.chat.id, result.message_id)
    request = result.reply_to_message
    ref = image_in(request, app.config) if request is not None else None
    origin_id = rerun.origin.get("message_id")
    reply_to = request.message_id if request is not None else (
        int(str(origin_id)) if origin_id is not None else None)
    if ref is None:
        file_id = rerun.origin.get("file_id")
        if not file_id:
            raise ImageError(GONE)
        ref = ImageRef(str(file_id), None, reply_to or result.message_id)
    return ref, Target(result.chat.id, reply_to)
