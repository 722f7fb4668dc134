"""Discord's share of health and metrics: gateway state and every REST answer."""

from __future__ import annotations

from types import SimpleNamespace

import aiohttp
from discord.ext import commands

from bot import metrics
from bot.health import Health

PLATFORM = "discord"


def rest_trace() -> aiohttp.TraceConfig:
    """An aiohttp trace for discord.py's REST session: counts errors and 429s."""

    async def on_end(_: aiohttp.ClientSession, __: SimpleNamespace,
                     params: aiohttp.TraceRequestEndParams) -> None:
        status = params.response.status
        if status == 429:
            metrics.platform_rate_limited(PLATFORM)
        elif status >= 400:
            metrics.platform_error(PLATFORM, f"http_{status}")

    async def on_exception(_: aiohttp.ClientSession, __: SimpleNamespace,
                           params: aiohttp.TraceRequestExceptionParams) -> None:
        metrics.platform_error(PLATFORM, "network")

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_end)
    trace.on_request_exception.append(on_exception)
    return trace


def watch_gateway(bot: commands.Bot, health: Health) -> None:
    """Discord is healthy from READY (or RESUMED) until the gateway drops."""

    async def on_ready() -> None:
        health.up(PLATFORM, f"gateway connected as {bot.user}")

    async def on_resumed() -> None:
        health.answered(PLATFORM)

    async def on_disconnect() -> None:
        health.down(PLATFORM, "gateway disconnected; reconnecting")

    bot.add_listener(on_ready, "on_ready")
    bot.add_listener(on_resumed, "on_resumed")
    bot.add_listener(on_disconnect, "on_disconnect")
