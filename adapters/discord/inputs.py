"""The input image: found in an attachment or a message, checked, then downloaded with a cap.

Sizes and content types Discord reports are checked before downloading, so an oversized file or
a video never leaves the CDN; the core's ``probe`` then checks the bytes themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import discord
import httpx

from bot.app import App
from bot.errors import ImageError
from bot.imaging import SUPPORTED

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")
DOWNLOAD_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class ImageSource:
    """Where the input image is, with what Discord told about it (None: unknown)."""

    url: str
    size: int | None = None
    content_type: str | None = None

    @classmethod
    def of(cls, attachment: discord.Attachment) -> ImageSource:
        return cls(attachment.url, attachment.size, attachment.content_type)


def _megabytes(n: int) -> str:
    if n < 1024 * 1024:
        return f"{-(-n // 1024)} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def looks_like_image(attachment: discord.Attachment) -> bool:
    if attachment.content_type:
        return attachment.content_type.startswith("image/")
    return attachment.filename.lower().endswith(IMAGE_SUFFIXES)


def find_image(message: discord.Message) -> ImageSource | None:
    """The first image of a message: an attachment, else an embed's picture."""
    for attachment in message.attachments:
        if looks_like_image(attachment):
            return ImageSource.of(attachment)
    for embed in message.embeds:
        # A pasted image link embeds as type "image" with the picture in the thumbnail.
        media = [embed.image] + ([embed.thumbnail] if embed.type == "image" else [])
        for item in media:
            url = item.proxy_url or item.url
            if url:
                return ImageSource(url)
    return None


def check(source: ImageSource, max_bytes: int) -> None:
    """Refuse what Discord already says is too big or not an image."""
    if source.size is not None and source.size > max_bytes:
        raise ImageError(f"The image is {_megabytes(source.size)}; the limit is "
                         f"{_megabytes(max_bytes)}.")
    if source.content_type and not source.content_type.startswith("image/"):
        raise ImageError(f"That file is not an image; please attach a {SUPPORTED} image.")


async def download(app: App, source: ImageSource) -> bytes:
    """The image's bytes, refusing more than ``limits.max_input_bytes``."""
    max_bytes = app.config.limits.max_input_bytes
    check(source, max_bytes)
    data = bytearray()
    try:
        async with app.http.stream("GET", source.url, timeout=DOWNLOAD_TIMEOUT) as response:
            if response.status_code != 200:
                raise ImageError(f"The image could not be downloaded (HTTP "
                                 f"{response.status_code}); please send it again.")
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > max_bytes:
                    raise ImageError(f"The image is larger than the {_megabytes(max_bytes)} "
                                     "limit.")
    except httpx.HTTPError as exc:
        raise ImageError("The image could not be downloaded; please try again.") from exc
    return bytes(data)


async def refetch(app: App, client: discord.Client, origin: dict[str, Any]) -> bytes:
    """A job's input again: from its URL, else from the message it came from (fresh URLs)."""
    url = origin.get("image_url")
    if url:
        try:
            return await download(app, ImageSource(str(url)))
        except ImageError:
            if not origin.get("source_message_id"):
                raise
    source_channel, source_message = origin.get("source_channel_id"), origin.get(
        "source_message_id")
    if not (source_channel and source_message):
        raise ImageError("The original image is no longer available; please send it again.")
    channel = client.get_partial_messageable(int(source_channel))
    try:
        message = await channel.fetch_message(int(source_message))
    except discord.HTTPException as exc:
        raise ImageError("The original image is no longer available; please send it "
                         "again.") from exc
    found = find_image(message)
    if found is None:
        raise ImageError("The original image is no longer available; please send it again.")
    return await download(app, found)
