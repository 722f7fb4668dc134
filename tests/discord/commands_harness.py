"""Temporary fixtures for the command tests until tests/discord/conftest.py exists."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest
from discord.ext import commands

from adapters.discord import commands_admin, commands_user
from adapters.discord.replies import install_error_handler
from bot.app import App, running_app
from bot.config import build_config
from tests.fakes.a1111 import FakeA1111
from tests.fakes.discord_api import FakeDiscord, point_discord_py_at, run_bot
from tests.fakes.discord_world import OWNER

__all__ = ["a1111", "app", "bot", "fake"]


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
async def app(tmp_path: Path, fake: FakeDiscord, a1111: FakeA1111) -> AsyncIterator[App]:
    config = build_config({
        "storage": {"url": f"sqlite:///{tmp_path / 'bot.db'}"},
        "credits": {"initial": 20, "daily_free": 0, "owners": [f"discord:{OWNER.id}"]},
        "providers": {"webui": {"type": "a1111", "url": a1111.base_url, "poll_interval": 0.05,
                                "timeout": 10}},
        "discord": {"token": fake.token, "api_base": fake.api_base,
                    "gateway_url": fake.gateway_url},
    }, environ={})
    async with running_app(config) as built:
        yield built


@pytest.fixture
async def bot(fake: FakeDiscord, app: App) -> AsyncIterator[commands.Bot]:
    built = commands.Bot(command_prefix=commands.when_mentioned,
                         intents=discord.Intents.default(), guild_ready_timeout=0.05)
    commands_user.register(built, app)
    commands_admin.register(built, app)
    install_error_handler(built.tree)

    async def setup_hook() -> None:
        await built.tree.sync()

    built.setup_hook = setup_hook  # type: ignore[method-assign]
    async with run_bot(fake, built) as running:
        yield running
