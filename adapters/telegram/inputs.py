"""What a message brings to a request: who asks, where, and which image (fetched with care)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import cast

import aiohttp
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.types import Chat, Message, User

from bot.app import App
from bot.config import Config
from bot.errors import FetchError, FetchTooLarge, ImageError, UserError
from bot.i18n import Msg, file_size, t
from bot.imaging import named_like_image
from bot.models import ChatRef, UserRef


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A downloadable image: its file_id and claimed size."""

    file_id: str
    file_size: int | None


def user_of(user: User | None, sender_chat: Chat | None = None) -> UserRef:
    """The requester; an anonymous admin or a channel is its chat (one account per chat)."""
    if sender_chat is not None:
        return UserRef("telegram", str(sender_chat.id), sender_chat.title or "")
    if user is None:
        raise UserError(msg=Msg("tg-who"))
    return UserRef("telegram", str(user.id), user.full_name)


def chat_of(chat: Chat) -> ChatRef:
    return ChatRef("telegram", str(chat.id), private=chat.type == "private")


def download_limit(config: Config) -> int:
    """The most bytes worth fetching: Telegram's download limit and the core's input limit."""
    telegram = config.telegram.max_download_bytes if config.telegram else 20 * 1024 * 1024
    return min(telegram, config.limits.max_input_bytes)


def _too_big(size: int, limit: int) -> ImageError:
    return ImageError(msg=Msg("tg-too-big", {"size": file_size(size), "limit": file_size(limit)}))


def _failed(msg_id: str = "tg-fetch-again", limit: int = 0) -> ImageError:
    return ImageError(msg=Msg(msg_id, {"limit": file_size(limit)} if limit else {}))


def image_in(message: Message, config: Config) -> ImageRef | None:
    """The image ``message`` carries (None if none); a non-image or too-big file is refused."""
    limit = download_limit(config)
    if message.photo:
        fitting = [size for size in message.photo
                   if (size.file_size is None or size.file_size <= limit)
                   and size.width * size.height <= config.limits.max_input_pixels]
        if not fitting:
            raise _too_big(max(s.file_size or 0 for s in message.photo), limit)
        best = max(fitting, key=lambda s: (s.width * s.height, s.file_size or 0))
        return ImageRef(best.file_id, best.file_size)
    document = message.document
    if document is not None:
        name = document.file_name or t("tg-this-file")
        if not named_like_image(name, document.mime_type):
            raise ImageError(msg=Msg("tg-not-an-image", {"name": name}))
        if document.file_size is not None and document.file_size > limit:
            raise _too_big(document.file_size, limit)
        return ImageRef(document.file_id, document.file_size)
    return None


def find_image(message: Message, config: Config) -> ImageRef | None:
    """The image of the message itself, else of the message it replies to."""
    found = image_in(message, config)
    if found is None and message.reply_to_message is not None:
        found = image_in(message.reply_to_message, config)
    return found


async def download(bot: Bot, ref: ImageRef, app: App) -> bytes:
    """Fetch the file (size checked before and after); a failure is an ``ImageError``.

    The size ``getFile`` reports is checked before any byte moves (a message need not carry
    one), and the bytes come from the configured Bot API origin only: what a self-hosted one
    redirects to is nobody the operator vouched for.
    """
    limit = download_limit(app.config)
    if ref.file_size is not None and ref.file_size > limit:
        raise _too_big(ref.file_size, limit)
    try:
        file = await bot.get_file(ref.file_id, request_timeout=30)
        if file.file_size is not None and file.file_size > limit:
            raise _too_big(file.file_size, limit)
        if not file.file_path:
            raise _failed("tg-fetch-resend")
        if bot.session.api.is_local:  # the Bot API server's own disk, read by aiogram
            buffer = io.BytesIO()
            await bot.download_file(file.file_path, destination=buffer, timeout=60)
            data = buffer.getvalue()
        else:
            data = await app.fetcher.fetch_configured(
                await cast(AiohttpSession, bot.session).create_session(),
                bot.session.api.file_url(bot.token, file.file_path), max_bytes=limit)
    except TelegramBadRequest as exc:
        too_big = "too big" in exc.message
        raise _failed("tg-over-telegram-limit" if too_big else "tg-fetch-resend", limit) from exc
    except FetchTooLarge as exc:
        raise _failed("tg-over-limit", limit) from exc
    except (FetchError, TelegramAPIError, aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise _failed() from exc
    if len(data) > limit:
        raise _too_big(len(data), limit)
    return data
