"""Fixtures for Discord end-to-end tests: the fake Discord, a fake A1111, the app, the real bot.

``fake`` (FakeDiscord, discord.py pointed at it), ``a1111`` (FakeA1111), ``app`` (running_app
on a fresh SQLite file), ``bot`` (the adapter's ``build_bot(app)``, started and ready). For
another config or a second process on the same database, use ``bot_config`` and ``started``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from discord.ext import commands

from adapters.discord import build_bot
from bot.app import App, running_app
from bot.config import Config, build_config
from tests.fakes.a1111 import FakeA1111
from tests.fakes.discord_api import FakeDiscord, point_discord_py_at, run_bot
from tests.fakes.discord_world import OWNER

INITIAL_CREDITS = 20


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def bot_config(db: Path, fake: FakeDiscord, a1111: FakeA1111, **sections: Any) -> Config:
    """The test config: webui (fake A1111, cost 1) and echo backends; ``sections`` merge in."""
    data = {
        "storage": {"url": f"sqlite:///{db}"},
        "credits": {"initial": INITIAL_CREDITS, "daily_free": 0,
                    "owners": [f"discord:{OWNER.id}"]},
        "defaults": {"provider": "webui"},
        "providers": {
            "webui": {"type": "a1111", "url": a1111.base_url, "poll_interval": 0.02,
                      "timeout": 10, "label": "WebUI"},
            "echo": {"type": "echo", "cost": 1},
        },
        "discord": {"token": fake.token, "api_base": fake.api_base,
                    "gateway_url": fake.gateway_url, "progress_interval": 0.05,
                    "status_after": 0},
    }
    return build_config(_merge(data, sections), environ={})


@contextlib.asynccontextmanager
async def started(fake: FakeDiscord, config: Config) -> AsyncIterator[tuple[App, commands.Bot]]:
    """One bot process: the app and the adapter's bot, ready on the fake; closed on exit."""
    async with contextlib.AsyncExitStack() as stack:
        app = await stack.enter_async_context(running_app(config))
        bot = await stack.enter_async_context(run_bot(fake, build_bot(
            app, guild_ready_timeout=0.05)))
        yield app, bot


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        assert isinstance(server, FakeDiscord)
        point_discord_py_at(server, monkeypatch)
        yield server


@pytest.fixture
async def a1111() -> AsyncIterator[FakeA1111]:
    async with FakeA1111(delay=0.05) as server:
        assert isinstance(server, FakeA1111)
        yield server


@pytest.fixture
def config(tmp_path: Path, fake: FakeDiscord, a1111: FakeA1111) -> Config:
    return bot_config(tmp_path / "bot.db", fake, a1111)


@pytest.fixture
async def app(config: Config) -> AsyncIterator[App]:
    async with running_app(config) as built:
        yield built


@pytest.fixture
async def bot(fake: FakeDiscord, app: App) -> AsyncIterator[commands.Bot]:
    async with run_bot(fake, build_bot(app, guild_ready_timeout=0.05)) as running:
        yield running
