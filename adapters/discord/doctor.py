"""``img2img-bot doctor`` for Discord: GET /users/@me with the configured token."""

from __future__ import annotations

import asyncio

import aiohttp
import discord
import discord.http

from adapters.discord.client import apply_endpoints
from bot.config import DiscordConfig
from bot.diagnose import Check, public_url

PART = "discord"


async def check(config: DiscordConfig) -> Check:
    """Whether Discord's REST API accepts this token, and the bot's name."""
    if config.token is None:
        return Check(PART, False, "no token", cause="no token is configured",
                     remedy="set DISCORD_BOT_TOKEN")
    apply_endpoints(config)
    url = public_url(config.api_base.rstrip("/") + "/users/@me")
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    try:
        me = await http.static_login(config.token.get_secret_value())
    except discord.LoginFailure:
        return Check(PART, False, "token refused", url=url,
                     cause="HTTP 401 Unauthorized (Discord refused the token)",
                     remedy="reset the token in the Developer Portal (Bot → Reset Token) and "
                            "put it in DISCORD_BOT_TOKEN")
    except discord.HTTPException as exc:
        return Check(PART, False, "error", url=url, cause=f"HTTP {exc.status} ({exc.text})")
    except (aiohttp.ClientError, OSError) as exc:
        return Check(PART, False, "unreachable", url=url,
                     cause=f"connection error ({type(exc).__name__}: {exc})",
                     remedy="check the network, or discord.api_base")
    finally:
        await http.close()
    return Check(PART, True, f"ok ({me['username']}, id {me['id']})", url=url)

