"""A fake Telegram Bot API server that real aiogram talks to over HTTP.

    async with FakeTelegram() as fake:             # 127.0.0.1:<ephemeral>, token TOKEN
        bot = fake.make_bot()                       # or TelegramAPIServer.from_base(base_url)
        fake.push_update(fake.build.photo(jpeg, caption="/img2img a cat"))
        photo = await fake.wait_for_photo(USER_ID)  # what the user sees: bytes, caption, buttons

Set-up: add_user, add_chat, set_member, add_file, block, delete_as_user, fail_next, set_delay,
limits (FloodLimits: 429 past Telegram's flood limits, telegram_limits.py).
Updates: build.* (telegram_updates.py), push_update(redeliver=), deliver_webhook.
Payments (telegram_payments.py): pay(invoice, user_id), invoices, checkout_answers, charges.
Seeing: messages, message, texts, last_message/last_photo/last_document, photos, actions,
callback_answers, commands(scope), calls / calls_to / counts, photo_sends, reply_latencies,
max_polls_in_flight (getUpdates calls waiting at once),
transcript. Waiting: wait_for, wait_for_call, wait_for_message, wait_for_photo,
wait_until_consumed. Method semantics: telegram_methods.py, telegram_chats.py,
telegram_delivery.py (webhook); formatted text: telegram_text.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiohttp import web

from tests.fakes.server import FakeServer, json_response
from tests.fakes.telegram_delivery import WebhookDelivery
from tests.fakes.telegram_limits import FloodLimits
from tests.fakes.telegram_methods import BotApiMethods
from tests.fakes.telegram_model import (
    HANDLERS,
    ApiError,
    Call,
    Params,
    SentMessage,
    Upload,
    api_method,
    decode_field,
)
from tests.fakes.telegram_payments import PaymentMethods
from tests.fakes.telegram_updates import UpdateBuilder

TOKEN = "123456:TEST-TOKEN"
T = TypeVar("T")
# What Telegram sends when allowed_updates was never set (or set to []).
_NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


class LoopbackSession(AiohttpSession):
    """AiohttpSession without its 250 ms wait for TLS shutdown: the fake is plain HTTP."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


@dataclass(slots=True)
class _Fault:
    code: int
    description: str
    parameters: dict[str, Any]
    times: int


@dataclass(slots=True)
class _Queued:
    update: dict[str, Any]
    sticky: bool  # a redelivery: survives the offset acknowledgement until delivered once


class FakeTelegram(WebhookDelivery, PaymentMethods, BotApiMethods, FakeServer):
    """The fake Bot API server (see the module docstring for its test-facing API)."""

    def __init__(self, token: str = TOKEN, *, username: str = "img2img_test_bot",
                 first_name: str = "Img2Img Test", long_poll: float = 0.5,
                 strict_chats: bool = True) -> None:
        FakeServer.__init__(self)
        BotApiMethods.__init__(self, token, username, first_name, strict_chats)
        WebhookDelivery.__init__(self)
        self.init_payments()
        self.long_poll = long_poll
        self.limits: FloodLimits | None = None  # Telegram's flood limits, when a test sets them
        self.calls: list[Call] = []
        self.counts: Counter[str] = Counter()
        self.photo_sends: list[SentMessage] = []
        self.chat_actions: list[tuple[int, str]] = []
        self.callback_answers: list[dict[str, Any]] = []
        self.downloads: list[str] = []
        self.file_redirect: str | None = None  # /file/... answers 302 here (a hostile proxy)
        self.allowed_updates: list[str] | None = None
        self.dropped_updates: list[dict[str, Any]] = []  # filtered out by allowed_updates
        self.pushed_at: dict[int, float] = {}
        self.incoming_at: dict[tuple[int, int], float] = {}
        self._queue: list[_Queued] = []
        self._last_update_id = 0
        self._poll_generation = 0
        self.polls_in_flight = 0  # getUpdates calls waiting now, and the most there ever were
        self.max_polls_in_flight = 0
        self._faults: dict[str, list[_Fault]] = {}
        self._delays: dict[str, float] = {}
        self._event = asyncio.Event()
        self._query_ids = itertools.count(1)
        self.build = UpdateBuilder(self)

    # -- wiring ---------------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def stop(self) -> None:
        self.long_poll = 0.0  # release pending getUpdates so shutdown does not wait for them
        self._changed()
        await self.close_delivery()
        await super().stop()

    def api_server(self) -> TelegramAPIServer:
        return TelegramAPIServer.from_base(self.base_url)

    def make_bot(self, **kwargs: Any) -> Bot:
        """A real aiogram Bot pointed at this fake; the caller closes ``bot.session``."""
        return Bot(self.token, session=LoopbackSession(api=self.api_server()), **kwargs)

    # -- HTTP -----------------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return json_response(ApiError(401, "Unauthorized").body(), status=401)
        try:
            params, files = await self._read(request)
        except ApiError as exc:
            return json_response(exc.body(), status=exc.code)
        status, body = await self.call(request.match_info["method"], params, files)
        return json_response(body, status=status)

    @staticmethod
    async def _read(request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
        values: dict[str, Any] = dict(request.query)
        files: dict[str, Upload] = {}
        if request.body_exists:
            if request.content_type == "application/json":
                body = await request.json()
                if not isinstance(body, dict):
                    raise ApiError(400, "Bad Request: JSON object expected")
                values.update(body)
            else:
                # request.post() reads urlencoded and multipart alike; never read() first.
                for key, value in (await request.post()).items():
                    if isinstance(value, web.FileField):
                        files[key] = Upload(key, value.filename, value.content_type,
                                            value.file.read())
                    else:
                        values[key] = value
        return {k: decode_field(k, v) for k, v in values.items()}, files

    async def call(self, method: str, params: dict[str, Any],
                   files: dict[str, Upload] | None = None) -> tuple[int, dict[str, Any]]:
        """Run one Bot API method as if requested over HTTP: (status, JSON body)."""
        entry = HANDLERS.get(method.lower())
        name = entry[0] if entry else method
        record = Call(name, params, files or {}, time.perf_counter())
        self.calls.append(record)
        self.counts[name] += 1
        try:
            if entry is None:
                raise ApiError(404, "Not Found")
            delay = self._delays.get(name.lower(), self._delays.get("*", 0.0))
            if delay:
                await asyncio.sleep(delay)
            self._take_fault(name.lower())
            if self.limits is not None:
                self.limits.check(name, params.get("chat_id"))
            result = await entry[1](self, Params(params, record.files))
        except ApiError as exc:
            record.status, record.description = exc.code, exc.description
            return exc.code, exc.body()
        finally:
            self._changed()
        return 200, {"ok": True, "result": result}

    async def _file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return json_response(ApiError(401, "Unauthorized").body(), status=401)
        stored = self.files_by_path.get(request.match_info["path"])
        if stored is None:
            return json_response(ApiError(404, "Not Found").body(), status=404)
        if self.file_redirect:
            raise web.HTTPFound(self.file_redirect)
        self.downloads.append(stored.file_path)
        self._changed()
        return web.Response(body=stored.data, content_type="application/octet-stream")

    # -- fault injection ------------------------------------------------------------------
    def fail_next(self, method: str, error_code: int, description: str | None = None, *,
                  retry_after: int | None = None, migrate_to_chat_id: int | None = None,
                  times: int = 1) -> None:
        """The next ``times`` calls of ``method`` ("*" = any) answer this error instead."""
        if description is None:
            description = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
                           404: "Not Found", 409: "Conflict", 429:
                           f"Too Many Requests: retry after {retry_after}",
                           500: "Internal Server Error", 502: "Bad Gateway"}.get(
                               error_code, "Error")
        parameters = {k: v for k, v in (("retry_after", retry_after),
                                        ("migrate_to_chat_id", migrate_to_chat_id)) if v}
        self._faults.setdefault(method.lower(), []).append(
            _Fault(error_code, description, parameters, times))

    def clear_faults(self) -> None:
        """Answer every method normally again."""
        self._faults.clear()

    def set_delay(self, method: str, seconds: float) -> None:
        """Answer ``method`` ("*" = any) only after ``seconds`` (simulated latency)."""
        self._delays[method.lower()] = seconds

    def _take_fault(self, method: str) -> None:
        for key in (method, "*"):
            queue = self._faults.get(key)
            if queue:
                fault = queue[0]
                fault.times -= 1
                if fault.times <= 0:
                    queue.pop(0)
                raise ApiError(fault.code, fault.description, **fault.parameters)

    # -- updates --------------------------------------------------------------------------
    def next_update_id(self) -> int:
        self._last_update_id += 1
        return self._last_update_id

    def push_update(self, update: dict[str, Any], *, redeliver: bool = False) -> dict[str, Any]:
        """Queue an update for getUpdates (or the webhook); ``redeliver`` ignores the offset."""
        if "update_id" not in update:
            update = {"update_id": self.next_update_id(), **update}
        self._last_update_id = max(self._last_update_id, update["update_id"])
        self.register_update(update)
        self._queue.append(_Queued(update, redeliver))
        self._changed()
        if self.webhook:
            self.start_flush()
        return update

    def register_update(self, update: dict[str, Any]) -> None:
        """Note what an update brings (messages, open callback queries) and when it came."""
        now = time.perf_counter()
        self.pushed_at.setdefault(update["update_id"], now)
        message = update.get("message") or update.get("edited_message")
        if message:
            self.remember_incoming(message)
            self.incoming_at.setdefault((message["chat"]["id"], message["message_id"]), now)
        if "callback_query" in update:
            self.open_queries.add(str(update["callback_query"]["id"]))

    def _allowed(self, update: dict[str, Any]) -> bool:
        kind = next(k for k in update if k != "update_id")
        if self.allowed_updates:
            return kind in self.allowed_updates
        return kind not in _NOT_BY_DEFAULT

    def take_updates(self, limit: int = 100) -> list[dict[str, Any]]:
        """Pending updates to hand out now; those allowed_updates excludes are dropped."""
        batch: list[dict[str, Any]] = []
        for queued in list(self._queue):
            if not self._allowed(queued.update):
                self._queue.remove(queued)
                self.dropped_updates.append(queued.update)
            elif len(batch) < limit:
                queued.sticky = False
                batch.append(queued.update)
        return batch

    def acknowledge(self, offset: int) -> None:
        self._queue = [q for q in self._queue if q.sticky or q.update["update_id"] >= offset]

    def drop_pending_updates(self) -> None:
        self._queue.clear()

    def pending_update_count(self) -> int:
        return len(self._queue)

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        return [q.update for q in self._queue]

    @api_method("getUpdates")
    async def get_updates(self, p: Params) -> Any:
        if self.webhook:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active;"
                                " use deleteWebhook to delete the webhook first")
        offset = p.integer("offset")
        if offset:
            self.acknowledge(offset)
        if p.get("allowed_updates") is not None:
            self.allowed_updates = p.get("allowed_updates")
        limit = min(max(p.integer("limit", 100) or 100, 1), 100)
        self._poll_generation += 1
        generation = self._poll_generation
        self._changed()  # an older long poll still waiting ends with 409, as on Telegram
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(max(p.integer("timeout", 0) or 0, 0), self.long_poll)
        self.polls_in_flight += 1
        self.max_polls_in_flight = max(self.max_polls_in_flight, self.polls_in_flight)
        try:
            while True:
                if generation != self._poll_generation:
                    raise ApiError(409, "Conflict: terminated by other getUpdates request; make "
                                        "sure that only one bot instance is running")
                batch = self.take_updates(limit)
                if batch or loop.time() >= deadline or not self.long_poll:
                    return batch
                await self._wait_change(deadline - loop.time())
        finally:
            self.polls_in_flight -= 1

    # -- waiting --------------------------------------------------------------------------
    def _changed(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def _wait_change(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._event.wait()

    async def wait_for(self, predicate: Callable[[], T | None], timeout: float = 5.0, *,
                       what: str = "") -> T:
        """Return ``predicate()`` once truthy, re-checked on every state change."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for "
                                     f"{what or predicate}\n{self.transcript()}")
            await self._wait_change(remaining)

    async def wait_for_call(self, method: str, predicate: Callable[[Call], bool] | None = None,
                            *, count: int = 1, timeout: float = 5.0) -> Call:
        """The ``count``-th call of ``method`` that matches ``predicate``."""
        def found() -> Call | None:
            hits = [c for c in self.calls_to(method) if predicate is None or predicate(c)]
            return hits[count - 1] if len(hits) >= count else None
        return await self.wait_for(found, timeout, what=f"{count} x {method}")

    async def wait_for_message(self, chat_id: int,
                               predicate: Callable[[SentMessage], bool] | None = None, *,
                               kind: str | None = None, timeout: float = 5.0) -> SentMessage:
        """The first visible bot message in the chat that matches."""
        def found() -> SentMessage | None:
            return next((m for m in self.messages(chat_id) if (kind is None or m.kind == kind)
                         and (predicate is None or predicate(m))), None)
        return await self.wait_for(found, timeout, what=f"a {kind or ''} message in {chat_id}")

    async def wait_for_photo(self, chat_id: int, timeout: float = 5.0) -> SentMessage:
        return await self.wait_for_message(chat_id, kind="photo", timeout=timeout)

    async def wait_until_consumed(self, timeout: float = 5.0) -> None:
        """Every pushed update was acknowledged (polling) or delivered (webhook)."""
        await self.wait_for(lambda: not self._queue, timeout, what="the update queue to empty")

    # -- what users see -------------------------------------------------------------------
    def messages(self, chat_id: int, *, include_deleted: bool = False) -> list[SentMessage]:
        return [m for m in self._messages.get(chat_id, []) if include_deleted or not m.deleted]

    def message(self, chat_id: int, message_id: int) -> SentMessage:
        msg = self._by_id.get((chat_id, message_id))
        if msg is None:
            raise AssertionError(f"the bot sent no message {message_id} in {chat_id}")
        return msg

    def texts(self, chat_id: int) -> list[str]:
        """Text or caption of each visible bot message, oldest first."""
        return [m.text or "" for m in self.messages(chat_id)]

    def last_message(self, chat_id: int, kind: str | None = None) -> SentMessage | None:
        found = [m for m in self.messages(chat_id) if kind is None or m.kind == kind]
        return found[-1] if found else None

    def last_photo(self, chat_id: int) -> SentMessage | None:
        return self.last_message(chat_id, "photo")

    def last_document(self, chat_id: int) -> SentMessage | None:
        return self.last_message(chat_id, "document")

    def photos(self, chat_id: int) -> list[SentMessage]:
        return [m for m in self.messages(chat_id) if m.kind == "photo"]

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    def actions(self, chat_id: int) -> list[str]:
        return [action for chat, action in self.chat_actions if chat == chat_id]

    def reply_latencies(self) -> list[float]:
        """Seconds from each user message's push to the bot's photo replying to it."""
        return [m.sent_at - self.incoming_at[(m.chat_id, m.reply_to_message_id)]
                for m in self.photo_sends
                if m.reply_to_message_id and (m.chat_id, m.reply_to_message_id) in self.incoming_at]

    def transcript(self, chat_id: int | None = None) -> str:
        """A readable dump of the calls and chats, for assertion messages."""
        lines = [f"calls: {[f'{c.method}:{c.status}' for c in self.calls[-20:]]}"]
        for chat in [chat_id] if chat_id is not None else list(self._messages):
            for m in self.messages(chat, include_deleted=True):
                lines.append(f"  [{chat}#{m.message_id}] {m.kind}{' (deleted)' * m.deleted} "
                             f"reply_to={m.reply_to_message_id} {json.dumps(m.text)[:120]} "
                             f"buttons={m.button_texts}")
        return "\n".join(lines)

    def next_query_id(self) -> str:
        return f"{next(self._query_ids)}{self.bot_id}"
