"""Following a job in the chat: the progress reply, the chat action, the result, the notices."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
)
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReplyParameters,
)

from adapters.telegram.limits import limits_of
from adapters.telegram.replies import esc
from bot.app import App
from bot.errors import DeliveryRefused
from bot.events import Detached, Done, Failed, Progress, Queued, Started
from bot.imaging import fit_for_delivery, image_size, off_loop
from bot.jobs import JobHandle
from bot.models import ImageData, UserRef
from bot.presenter import position_worth_showing, restarting, result_fields, status_line

log = logging.getLogger(__name__)

CAPTION_LIMIT = 1024
PHOTO_MAX_BYTES = 10 * 1024 * 1024
PHOTO_MAX_SIDE_SUM = 10_000
PHOTO_MAX_RATIO = 20
DOCUMENT_MAX_BYTES = 50 * 1024 * 1024
ACTION_EVERY = 4.5  # Telegram shows a chat action for 5 s
MIN_RETRY = 0.25  # a status update skipped for the flood limits is tried again this late


@dataclass(frozen=True, slots=True)
class Target:
    """Where a job's messages go: the chat, and the message they reply to."""

    chat_id: int
    reply_to: int | None

    def reply(self) -> ReplyParameters | None:
        if self.reply_to is None:
            return None
        return ReplyParameters(message_id=self.reply_to, allow_sending_without_reply=True)


class Deliveries:
    """The follow-up tasks of submitted jobs, so that shutdown can end them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def start(self, follow_up: Coroutine[Any, Any, None]) -> None:
        if self._closed:  # a handler that finished after shutdown began
            follow_up.close()
            return
        task = asyncio.create_task(_logged(follow_up), name="telegram-delivery")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _logged(follow_up: Coroutine[Any, Any, None]) -> None:
    """A delivery's unexpected error is logged here: nobody awaits the task."""
    try:
        await follow_up
    except Exception:
        log.exception("delivery failed")


def cancel_keyboard(job_id: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(text="✖️ Cancel", callback_data=f"c:{job_id}")]])


def result_keyboard(job_id: str) -> InlineKeyboardMarkup:
    def button(text: str, action: str) -> InlineKeyboardButton:
        return InlineKeyboardButton(text=text, callback_data=f"r:{action}:{job_id}")

    return InlineKeyboardMarkup(inline_keyboard=[
        [button("🔁 Again", "again"), button("♻️ Use as input", "reuse")],
        [button("➖ Strength", "weaker"), button("➕ Strength", "stronger")]])


class ProgressMessage:
    """The status reply: sent once the job has lasted ``after`` seconds, then edited at most
    once per ``interval``; a job that ends sooner never shows one."""

    def __init__(self, bot: Bot, target: Target, job_id: str, interval: float,
                 notices: tuple[str, ...], *, message_id: int | None = None,
                 remember: Callable[[int], Awaitable[None]] | None = None,
                 after: float = 0.0, may_send: Callable[[int], bool] | None = None) -> None:
        self.bot = bot
        self.target = target
        self.markup = cancel_keyboard(job_id)
        self.interval = interval
        self.footer = "".join(f"\nℹ️ {esc(n)}" for n in notices)
        self.message_id = message_id  # a status message shown before a restart, if any
        self.remember = remember
        self.gone = False
        self.held = False
        self.may_send = may_send  # the flood limits' leave; without it a line waits
        self._due = time.monotonic() + after
        self._retry_at = 0.0
        self._shown = ""
        self._last = 0.0
        self._pending: str | None = None
        self._flush: asyncio.Task[None] | None = None
        self._sending: asyncio.Task[None] | None = None

    async def update(self, line: str) -> None:
        """Show the latest line once the status is due and the edit interval is over."""
        if self.gone or (self.held and self.message_id is None):
            return
        self._pending = line
        if self._flush is None or self._flush.done():
            self._flush = asyncio.create_task(self._flush_later())

    def hold(self) -> None:
        """The result is on its way: a status message not sent yet is never sent."""
        self.held = True
        if self.message_id is None and self._flush is not None and self._sending is None:
            self._flush.cancel()

    async def _flush_later(self) -> None:
        while self._pending is not None and not self.gone:
            first = self.message_id is None
            due = max(self._due if first else self._last + self.interval, self._retry_at)
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if self.may_send is not None and not self.may_send(self.target.chat_id):
                # Results first: this line (or a newer one) goes at a later try.
                self._retry_at = time.monotonic() + max(self.interval, MIN_RETRY)
                continue
            line, self._pending = self._pending, None
            if line is None:
                return
            if first:
                # Shielded: a status message sent but not known would stay in the chat.
                self._sending = asyncio.create_task(self._send(line))
                await asyncio.shield(self._sending)
            else:
                await self._edit(line, self.markup)

    async def finish(self, line: str) -> None:
        """The last state, without the Cancel button (still within the edit rate).

        When the status message is gone (deleted by the user), a new one says it.
        """
        await self.close()
        if self.message_id is not None and not self.gone:
            await asyncio.sleep(max(0.0, self._last + self.interval - time.monotonic()))
            await self._edit(line, None)
            if not self.gone:
                return
        await self._send(line, markup=False)

    async def remove(self) -> None:
        await self.close()
        if self.message_id is not None and not self.gone:
            with contextlib.suppress(TelegramAPIError):
                await self.bot.delete_message(self.target.chat_id, self.message_id)

    async def close(self) -> None:
        """Drop a pending edit; a status message already on its way is waited for."""
        if self._flush is not None:
            self._flush.cancel()
            await asyncio.gather(self._flush, return_exceptions=True)
        if self._sending is not None:
            await asyncio.gather(self._sending, return_exceptions=True)

    async def _send(self, line: str, *, markup: bool = True) -> None:
        text = esc(line) + self.footer
        try:
            sent = await self.bot.send_message(
                self.target.chat_id, text, parse_mode="HTML", reply_parameters=self.target.reply(),
                reply_markup=self.markup if markup else None)
        except TelegramAPIError as exc:
            log.warning("progress message not sent: %s", exc)
            self.gone = True
            return
        self.message_id, self._shown, self._last = sent.message_id, text, time.monotonic()
        self.gone = False
        if self.remember is not None and markup:
            with contextlib.suppress(Exception):  # only needed to show it after a restart
                await self.remember(sent.message_id)

    async def _edit(self, line: str, markup: InlineKeyboardMarkup | None) -> None:
        text = esc(line) + self.footer
        if self.gone or self.message_id is None or (text == self._shown and markup):
            return
        try:
            await self.bot.edit_message_text(text=text, chat_id=self.target.chat_id,
                                             message_id=self.message_id, parse_mode="HTML",
                                             reply_markup=markup)
        except TelegramBadRequest as exc:
            if "not modified" in exc.message:
                return
            # Deleted by the user or too old to edit: carry on without it.
            log.info("progress message %s can no longer be edited: %s", self.message_id,
                     exc.message)
            self.gone = True
            return
        except TelegramAPIError as exc:
            log.warning("progress edit failed: %s", exc)
            return
        finally:
            # Counted from the answer, so Telegram never sees two edits closer than interval.
            self._last = time.monotonic()
        self._shown = text


async def _chat_action(bot: Bot, chat_id: int, after: float) -> None:
    """``upload_photo`` once generation has lasted ``after`` seconds, until cancelled
    (Telegram shows each for 5 s)."""
    await asyncio.sleep(after)
    while True:
        try:
            await bot.send_chat_action(chat_id, "upload_photo")
        except TelegramAPIError as exc:
            log.info("chat action failed: %s", exc)
        await asyncio.sleep(ACTION_EVERY)


async def follow(bot: Bot, app: App, handle: JobHandle, target: Target, prompt: str,
                 notices: tuple[str, ...] = ()) -> None:
    """Render the job's events until it ends; the result itself is sent by the courier."""
    config = app.config.telegram
    interval = config.progress_interval if config else 2.0
    after = config.status_after if config else 1.0
    status_id = handle.origin.get("status_message_id")
    limits = limits_of(bot)

    async def remember(message_id: int) -> None:
        await app.service.remember_status(handle.id, message_id)

    progress = ProgressMessage(bot, target, handle.id, interval, notices + handle.notices,
                               message_id=int(status_id) if status_id else None,
                               remember=remember, after=after,
                               may_send=limits.status_may_send if limits else None)
    action: asyncio.Task[None] | None = None
    shown_position: int | None = None
    _showing[handle.id] = progress
    try:
        async for event in handle.events():
            if isinstance(event, Started | Progress) and action is None:
                action = asyncio.create_task(_chat_action(bot, target.chat_id, after))
            elif not isinstance(event, Started | Progress):
                await _stop(action)
                action = None
            if isinstance(event, Queued):
                if not position_worth_showing(shown_position, event.position):
                    continue  # a small step in the queue is not worth an edit
                shown_position = event.position
            if isinstance(event, Done):
                await progress.remove()
            elif isinstance(event, Failed):
                await progress.finish(status_line(event))
            elif isinstance(event, Detached):
                if event.notice:
                    await progress.finish(event.notice)
            else:
                await progress.update(status_line(event))
    except asyncio.CancelledError:
        if handle.final is None and progress.message_id is not None:
            with contextlib.suppress(TelegramAPIError, TimeoutError):
                async with asyncio.timeout(2):
                    progress.interval = 0
                    await progress.finish(restarting())
        raise
    finally:
        if _showing.get(handle.id) is progress:
            del _showing[handle.id]
        await _stop(action)
        await progress.close()


# The status messages this process is showing, by job id, so the courier can hold one back
# when the result goes out first (job ids are unique across bots).
_showing: dict[str, ProgressMessage] = {}


def hold_status(job_id: str) -> None:
    """The result of ``job_id`` is being sent: don't start a status message for it now."""
    progress = _showing.get(job_id)
    if progress is not None:
        progress.hold()


async def _stop(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def result_caption(done: Done, prompt: str, notices: tuple[str, ...]) -> str:
    """HTML caption whose visible text stays within Telegram's 1,024 characters."""
    (label, _), *rest = result_fields(done, prompt)
    lines = [f"<b>{esc(name)}:</b> {esc(value)}" for name, value in rest]
    visible = sum(_units(f"{name}: {value}") + 1 for name, value in rest)
    notice_lines = [f"ℹ️ {esc(n)}" for n in notices]
    notice_units = sum(_units(f"ℹ️ {n}") + 1 for n in notices)
    if visible + notice_units > CAPTION_LIMIT - 200:
        notice_lines, notice_units = [], 0
    budget = CAPTION_LIMIT - visible - notice_units - _units(f"{label}: ")
    head = f"<b>{esc(label)}:</b> {esc(_trim(prompt, budget))}"
    return "\n".join([head, *lines, *notice_lines])


def _units(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def _trim(text: str, budget: int) -> str:
    if _units(text) <= budget:
        return text
    out = []
    used = 1  # the ellipsis
    for char in text:
        used += _units(char)
        if used > budget:
            break
        out.append(char)
    return "".join(out).rstrip() + "…"


def fits_photo(image: ImageData) -> bool:
    """Whether Telegram takes it as a photo (10 MB, side sum 10000, ratio 20)."""
    if len(image.data) > PHOTO_MAX_BYTES:
        return False
    try:
        width, height = image_size(image.data)
    except (OSError, ValueError):  # Telegram would refuse it as a photo too
        return False
    return width + height <= PHOTO_MAX_SIDE_SUM and max(width, height) <= PHOTO_MAX_RATIO * min(
        width, height)


async def send_result(bot: Bot, app: App, job_id: str, user: UserRef, done: Done,
                      target: Target, prompt: str, notices: tuple[str, ...], *,
                      also_file: bool | None = None) -> int:
    """Each image as a photo replying to the request (a document when too big for one);
    returns the first message's id, or raises ``DeliveryRefused``."""
    caption = result_caption(done, prompt, notices)
    markup = result_keyboard(job_id)
    if also_file is None:
        also_file = await app.preferences.user_pref(user, "file")
    first: int | None = None
    for index, image in enumerate(done.images):
        name = f"img2img-{done.seed if done.seed is not None else job_id[:8]}"
        name += f"-{index + 1}.{image.extension}" if len(done.images) > 1 else f".{image.extension}"
        text = caption if index == 0 else None
        try:
            as_photo = await off_loop(fits_photo, image)
            if not as_photo and len(image.data) > DOCUMENT_MAX_BYTES:
                image = await off_loop(fit_for_delivery, image, max_bytes=PHOTO_MAX_BYTES,
                                       max_side_sum=PHOTO_MAX_SIDE_SUM)
                as_photo = True
            if as_photo:
                sent = await bot.send_photo(target.chat_id, BufferedInputFile(image.data, name),
                                            caption=text, parse_mode="HTML", reply_markup=markup,
                                            reply_parameters=target.reply())
                first = sent.message_id if first is None else first
            if not as_photo or also_file:
                sent = await bot.send_document(
                    target.chat_id, BufferedInputFile(image.data, name),
                    caption=None if as_photo else text, parse_mode="HTML",
                    reply_markup=None if as_photo else markup, reply_parameters=target.reply())
                first = sent.message_id if first is None else first
        except TelegramAPIError as exc:
            log.warning("result of job %s not delivered: %s", job_id, exc)
            raise refusal(exc) from exc
    return first or 0


def refusal(exc: TelegramAPIError) -> DeliveryRefused:
    """How a Bot API error bears on retrying: 429, 5xx and network errors are retried."""
    if isinstance(exc, TelegramRetryAfter):
        return DeliveryRefused(exc.message, retry_after=float(exc.retry_after))
    if isinstance(exc, TelegramForbiddenError | TelegramNotFound):
        return DeliveryRefused(exc.message, permanent=True)
    if isinstance(exc, TelegramBadRequest):  # chat not found, file refused: same next time
        return DeliveryRefused(exc.message, permanent=True)
    return DeliveryRefused(exc.message)
