"""End-to-end Telegram fixtures: FakeTelegram + FakeA1111 + the real app + ``run_telegram``.

    async def test_x(tg: Harness) -> None:
        request = tg.send(tg.fake.build.photo(caption="/img2img a cat"))
        result = await tg.result(request)          # the bot's photo replying to it
        assert image_size(result.data) == (512, 384)
        assert await tg.balance() == 9

``tg`` runs the adapter by polling with the default settings (``make_settings``); for other
settings use ``async with start_telegram(fake, a1111, settings) as tg``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from adapters.telegram import run_telegram
from bot.app import App, running_app
from bot.config import build_config
from bot.i18n import LOCALES, render
from tests.fakes.a1111 import FakeA1111
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.fakes.telegram_model import SentMessage
from tests.fakes.telegram_updates import GROUP_ID, USER_ID

# The result's 🔁 button in every shipped language: a result is recognised in any of them.
AGAIN_LABELS = {render("tg-button-again", locale) for locale in LOCALES}
CANCEL_LABELS = {render("tg-button-cancel", locale) for locale in LOCALES}

__all__ = ["GROUP_ID", "OWNER_ID", "TOKEN", "USER_ID", "Harness", "image_size",
           "make_settings", "start_telegram"]

OWNER_ID = 1000
# Flood limits far above Telegram's, so a test's quick exchanges are not spaced out by them
# (tests of the limits set Telegram's own).
FAST_CHATS = {"chat_per_second": 100.0, "group_per_minute": 6000.0, "group_burst": 100,
              "global_per_second": 1000.0}


def image_size(data: bytes | None) -> tuple[int, int]:
    """Decode uploaded bytes fully (a broken upload fails here) and give their size."""
    assert data, "no image bytes"
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return img.size


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        out[key] = (_merge(out[key], value) if isinstance(value, dict)
                    and isinstance(out.get(key), dict) else value)
    return out


def make_settings(tmp_path: Path, fake: FakeTelegram, a1111: FakeA1111,
                  **changes: Any) -> dict[str, Any]:
    """The TOML document as a dict: immediate status, fast progress, 10 credits each, one
    A1111 backend."""
    base = {
        "storage": {"url": f"sqlite:///{tmp_path / 'bot.db'}"},
        "telegram": {"token": TOKEN, "api_base": fake.base_url, "progress_interval": 0.05,
                     "status_after": 0.0, "limits": FAST_CHATS},
        "credits": {"initial": 10, "daily_free": 0, "owners": [f"telegram:{OWNER_ID}"]},
        "defaults": {"provider": "webui"},
        "providers": {"webui": {"type": "a1111", "url": a1111.base_url, "cost": 1,
                                "poll_interval": 0.02, "timeout": 10, "label": "Test WebUI"}},
    }
    return _merge(base, changes)


@dataclass
class Harness:
    """The running bot and what tests look at: the fake chats, the ledger, the backend."""

    fake: FakeTelegram
    a1111: FakeA1111
    app: App
    stop: asyncio.Event
    task: asyncio.Task[None]

    def send(self, update: dict[str, Any], *, redeliver: bool = False) -> dict[str, Any]:
        """Queue an update for the bot's getUpdates; returns it."""
        return self.fake.push_update(update, redeliver=redeliver)

    async def reply(self, update: dict[str, Any], *, kind: str | None = None,
                    contains: str = "", timeout: float = 5.0) -> SentMessage:
        """The bot's first message replying to ``update``'s message (optionally of a kind)."""
        message = update["message"]
        return await self.fake.wait_for_message(
            message["chat"]["id"],
            lambda m: m.reply_to_message_id == message["message_id"]
            and contains in (m.text or ""), kind=kind, timeout=timeout)

    async def result(self, update: dict[str, Any], timeout: float = 5.0) -> SentMessage:
        """The result (photo or document with the result buttons) replying to ``update``."""
        message = update["message"]

        def found() -> SentMessage | None:
            return next((m for m in self.fake.messages(message["chat"]["id"])
                         if m.reply_to_message_id == message["message_id"]
                         and m.kind in ("photo", "document")
                         and AGAIN_LABELS & set(m.button_texts)),
                        None)
        return await self.fake.wait_for(found, timeout, what="a result")

    async def idle(self, timeout: float = 5.0) -> None:
        """No job is queued or running, and every update was taken."""
        await self.fake.wait_until_consumed(timeout)
        async with asyncio.timeout(timeout):
            for handle in list(self.app.service.active.values()):
                await handle.wait()

    async def settled(self, chat_id: int = USER_ID, timeout: float = 5.0) -> None:
        """Jobs are over and no status message in the chat still offers Cancel."""
        await self.idle(timeout)
        await self.fake.wait_for(lambda: not any(
            CANCEL_LABELS & set(m.button_texts) for m in self.fake.messages(chat_id)), timeout,
            what="status messages to settle")

    async def balance(self, user_id: int = USER_ID) -> int | None:
        return await self.app.storage.balance(f"telegram:{user_id}")

    async def ledger(self, user_id: int = USER_ID) -> list[tuple[str, int]]:
        """(kind, amount) of the user's ledger, oldest first."""
        entries = await self.app.storage.ledger(f"telegram:{user_id}", 100)
        return [(e.kind, e.amount) for e in sorted(entries, key=lambda e: e.id)]

    async def assert_ledger_consistent(self) -> None:
        assert await self.app.storage.drift() == []


@contextlib.asynccontextmanager
async def start_telegram(fake: FakeTelegram, a1111: FakeA1111,
                         settings: dict[str, Any]) -> AsyncIterator[Harness]:
    """Build the app from ``settings``, run the adapter, and stop it cleanly afterwards."""
    config = build_config(settings, environ={})
    async with running_app(config) as app:
        stop = asyncio.Event()
        task = asyncio.create_task(run_telegram(app, stop), name="run_telegram")
        harness = Harness(fake, a1111, app, stop, task)
        if config.telegram is not None and config.telegram.mode == "polling":
            await fake.wait_for(lambda: fake.counts["getUpdates"] or task.done(),
                                what="polling to start")
        try:
            yield harness
        finally:
            stop.set()
            async with asyncio.timeout(5):
                await task  # raises what run_telegram raised


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN, username="img2img_test_bot") as server:
        server.add_chat(USER_ID)
        server.add_chat(GROUP_ID, title="Artists")
        yield server


@pytest.fixture
async def a1111() -> AsyncIterator[FakeA1111]:
    async with FakeA1111(delay=0.05) as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, fake: FakeTelegram, a1111: FakeA1111) -> dict[str, Any]:
    return make_settings(tmp_path, fake, a1111)


@pytest.fixture
async def tg(fake: FakeTelegram, a1111: FakeA1111,
             settings: dict[str, Any]) -> AsyncIterator[Harness]:
    async with start_telegram(fake, a1111, settings) as harness:
        yield harness
