"""Discord's share of ``/healthz`` and ``/metrics``: gateway state and REST answers."""

from __future__ import annotations

import asyncio

import discord
import pytest
from discord.ext import commands

from bot import metrics
from bot.app import App
from bot.web import health_report
from tests.fakes.discord_api import FakeDiscord


async def test_discord_is_healthy_while_the_gateway_is_up(fake: FakeDiscord, app: App,
                                                          bot: commands.Bot) -> None:
    report = await health_report(app)
    assert report["ok"] and report["parts"]["discord"]["ok"]
    await fake.stop()  # Discord goes away: the gateway drops and cannot be reached again
    async with asyncio.timeout(20):  # polled as a probe would
        while True:
            report = await health_report(app)
            if not report["parts"]["discord"]["ok"]:
                break
            await asyncio.sleep(0.05)
    assert not report["ok"] and "disconnected" in report["parts"]["discord"]["detail"]


async def test_discord_rest_errors_are_counted(fake: FakeDiscord, bot: commands.Bot) -> None:
    def errors() -> float:
        found = metrics.REGISTRY.get_sample_value("img2img_platform_api_errors_total",
                                                  {"platform": "discord", "kind": "http_404"})
        return found or 0.0

    before = errors()
    channel = bot.get_partial_messageable(123)  # no such channel on the fake
    with pytest.raises(discord.NotFound):
        await channel.send("hello")
    assert errors() == before + 1
