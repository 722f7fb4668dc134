"""Telegram unreachable at start: the bot says so in one log line and keeps trying."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from adapters.telegram import run_telegram
from bot.app import running_app
from bot.config import build_config
from tests.fakes.a1111 import FakeA1111
from tests.fakes.telegram_api import TOKEN
from tests.providers.helpers import dead_url


async def test_an_unreachable_api_is_retried_until_stop(
        tmp_path: Path, a1111: FakeA1111, caplog: pytest.LogCaptureFixture) -> None:
    config = build_config({
        "storage": {"url": f"sqlite:///{tmp_path / 'bot.db'}"},
        "telegram": {"token": TOKEN, "api_base": dead_url()},
        "defaults": {"provider": "webui"},
        "providers": {"webui": {"type": "a1111", "url": a1111.base_url}},
    }, environ={})
    caplog.set_level(logging.ERROR)
    async with running_app(config) as app:
        stop = asyncio.Event()
        task = asyncio.create_task(run_telegram(app, stop))
        for _ in range(100):
            if "cannot reach the Telegram Bot API" in caplog.text:
                break
            await asyncio.sleep(0.02)
        assert not task.done()
        stop.set()
        await asyncio.wait_for(task, 5)
    assert "cannot reach the Telegram Bot API" in caplog.text
    assert TOKEN not in caplog.text and "Traceback" not in caplog.text
