"""``img2img-bot doctor`` for Telegram: getMe with the configured token."""

from __future__ import annotations

from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramUnauthorizedError

from adapters.telegram.transport import make_bot
from bot.config import TelegramConfig
from bot.diagnose import Check, public_url

PART = "telegram"


async def check(config: TelegramConfig) -> Check:
    """Whether the Bot API answers getMe with this token, and the bot's name."""
    url = public_url(config.api_base)
    bot = make_bot(config)
    try:
        me = await bot.get_me()
    except TelegramUnauthorizedError:
        return Check(PART, False, "token refused", url=url,
                     cause="getMe: HTTP 401 Unauthorized (the Bot API refused the token)",
                     remedy="copy the token again from @BotFather (/mybots → API Token) into "
                            "TELEGRAM_BOT_TOKEN")
    except TelegramNetworkError as exc:
        return Check(PART, False, "unreachable", url=url,
                     cause=f"getMe: connection error ({exc.message})",
                     remedy="check the network, or telegram.api_base for a self-hosted server")
    except TelegramAPIError as exc:
        return Check(PART, False, "error", url=url, cause=f"getMe: {exc.message}")
    finally:
        await bot.session.close()
    return Check(PART, True, f"ok (@{me.username}, {me.full_name}, id {me.id})", url=url)
