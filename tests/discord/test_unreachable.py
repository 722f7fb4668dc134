"""Discord unreachable at start: one log line, retried until stop, no traceback."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from adapters.discord import run_discord
from bot.app import running_app
from bot.errors import ConfigError
from tests.discord.conftest import bot_config
from tests.fakes.a1111 import FakeA1111
from tests.fakes.discord_api import FakeDiscord, point_discord_py_at
from tests.providers.helpers import dead_url


async def test_an_unreachable_discord_is_retried_until_stop(
        tmp_path: Path, fake: FakeDiscord, a1111: FakeA1111, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    point_discord_py_at(fake, monkeypatch)  # restores discord.py's URLs after the test
    dead = dead_url()
    config = bot_config(tmp_path / "bot.db", fake, a1111,
                        discord={"api_base": f"{dead}/api/v10", "gateway_url": dead})
    caplog.set_level(logging.ERROR)
    async with running_app(config) as app:
        stop = asyncio.Event()
        task = asyncio.create_task(run_discord(app, stop))
        for _ in range(150):
            if "cannot reach Discord" in caplog.text:
                break
            await asyncio.sleep(0.02)
        assert not task.done(), task
        stop.set()
        await asyncio.wait_for(task, 5)
    assert "cannot reach Discord" in caplog.text
    assert fake.token not in caplog.text and "Traceback" not in caplog.text


@pytest.mark.parametrize("role", ["all", "worker"])
async def test_a_refused_token_stops_the_start_with_the_key_to_fix(
        tmp_path: Path, fake: FakeDiscord, a1111: FakeA1111, monkeypatch: pytest.MonkeyPatch,
        role: str) -> None:
    point_discord_py_at(fake, monkeypatch)
    config = bot_config(tmp_path / "bot.db", fake, a1111, discord={"token": "not-the-token"})
    async with running_app(config, role=role) as app:
        with pytest.raises(ConfigError, match=r"discord\.token: Discord refused the bot token"):
            await asyncio.wait_for(run_discord(app, asyncio.Event()), 10)
